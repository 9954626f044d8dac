# frozen_string_literal: true

# Pangea namespace configuration (pangea.yaml / pangea.yml) and the backend
# it injects into each template (PANGEA_DSL.md §7, classic CLI rules).
module PangeaCompiler
  # Finds and reads the config file and resolves one namespace to a backend.
  class NamespaceConfig
    FILE_NAMES = %w[pangea.yaml pangea.yml].freeze # .yaml wins, as in the reference
    S3_FIELDS = %w[bucket key region dynamodb_table encrypt].freeze
    DEFAULT_LOCAL_PATH = './terraform.tfstate'

    # The template's own directory first (the operator checks out a repo and
    # compiles a file inside it), then the reference CLI's search list.
    def self.search_dirs(template_path)
      home = ENV['HOME']
      [File.dirname(File.expand_path(template_path)), Dir.pwd, File.join(Dir.pwd, '.pangea'),
       File.join(Dir.pwd, 'infrastructure', 'pangea'),
       home && File.join(home, '.config', 'pangea'), '/etc/pangea'].compact.uniq
    end

    # The config file to use, or nil when none exists. An explicit path must exist.
    def self.locate(template_path, explicit)
      if explicit
        raise NamespaceConfigError, "config file #{explicit} does not exist" unless File.file?(explicit)

        return explicit
      end
      search_dirs(template_path).each do |dir|
        FILE_NAMES.each do |name|
          path = File.join(dir, name)
          return path if File.file?(path)
        end
      end
      nil
    end

    def initialize(path)
      @path = path
      @data = parse(path)
    end

    attr_reader :path

    # Explicit namespace, else `default_namespace`; nil means "inject nothing".
    def namespace_name(requested)
      return requested if requested && !requested.empty?

      @data['default_namespace']
    end

    # A function from template name to {"s3" => {...}} or {"local" => {...}}
    # for namespace `name`. Validates the namespace once, before any template runs.
    def backend_for(name)
      namespaces = @data['namespaces'].is_a?(Hash) ? @data['namespaces'] : {}
      ns = namespaces[name]
      unless ns.is_a?(Hash)
        raise NamespaceNotFoundError,
              "Namespace '#{name}' not found in #{@path}; available: #{namespaces.keys.join(', ')}"
      end
      state = ns['state'].is_a?(Hash) ? ns['state'] : {}
      build_backend(name, state, 'template') # fail early on an invalid state
      ->(template) { build_backend(name, state, template) }
    end

    private

    def parse(path)
      require 'yaml' # only when a config exists: psych costs start-up time
      data = YAML.safe_load(File.read(path), permitted_classes: [], aliases: false, filename: path)
      data.is_a?(Hash) ? data : {}
    rescue Psych::SyntaxError => e
      raise NamespaceConfigError, "invalid YAML in #{path}: #{e.problem} at line #{e.line}"
    end

    def build_backend(name, state, template)
      case (state['type'] || 'local').to_s
      when 's3' then { 's3' => s3_backend(name, state, template) }
      when 'local' then { 'local' => { 'path' => local_path(state['path'], template) } }
      else
        raise NamespaceConfigError,
              "namespace '#{name}': state type '#{state['type']}' is not supported (use s3 or local)"
      end
    end

    # Only these five fields reach the JSON (kms_key_id & co are dropped, as
    # in the reference); the key is a prefix, one state object per template.
    def s3_backend(name, state, template)
      missing = %w[bucket key].reject { |f| state[f] }
      raise NamespaceConfigError, "namespace '#{name}': S3 backend requires: #{missing.join(', ')}" unless missing.empty?
      if state['key'].to_s.empty?
        raise NamespaceConfigError, "namespace '#{name}': S3 backend key is nil or empty"
      end

      fields = state.merge('dynamodb_table' => state['dynamodb_table'] || state['lock'],
                           'key' => "#{state['key']}/#{template}/terraform.tfstate")
      S3_FIELDS.each_with_object({}) { |f, out| out[f] = fields[f] unless fields[f].nil? }
    end

    def local_path(path, template)
      path = (path || DEFAULT_LOCAL_PATH).to_s
      path.end_with?('.tfstate') ? path : File.join(path, "#{template}.tfstate")
    end
  end
end
