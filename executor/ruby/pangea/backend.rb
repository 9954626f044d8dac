# frozen_string_literal: true

# Which backend each template gets, and how it is written into the document
# (PANGEA_DSL.md §7.3): `terraform.backend` is replaced whole, other
# `terraform` keys stay, and `terraform` keeps its position or is appended.
module PangeaCompiler
  # The caller's choice: `nil` = from the namespace config, "none" = leave the
  # template as written, a Hash = this backend for every template (the
  # operator's `kubernetes` default or its CRD's `spec.state`).
  class BackendChoice
    def initialize(request, warnings)
      @builder = resolve(request, warnings)
    end

    # The backend hash for `template`, or nil for "inject nothing".
    def for(template)
      @builder&.call(template)
    end

    private

    def resolve(request, warnings)
      choice = request['backend']
      case choice
      when nil then from_namespace(request, warnings)
      when 'none' then nil
      when Hash then ->(_template) { Document.copy(choice, 'backend') }
      else raise NamespaceConfigError, "backend must be null, \"none\" or an object, got #{choice.inspect}"
      end
    end

    def from_namespace(request, warnings)
      requested = request['namespace']
      path = NamespaceConfig.locate(request['file'], request['config'])
      unless path
        if requested && !requested.empty?
          warnings.add('NoNamespaceConfigWarning',
                       "namespace '#{requested}' selected but no pangea.yaml/pangea.yml found; " \
                       'no backend injected', nil, file: request['file'])
        end
        return nil
      end
      config = NamespaceConfig.new(path)
      name = config.namespace_name(requested)
      name && config.backend_for(name)
    end
  end

  # Writes a backend into a (string-keyed) document.
  module BackendInjector
    module_function

    def inject(doc, backend)
      return doc if backend.nil?

      terraform = doc['terraform']
      terraform = doc['terraform'] = {} if terraform.nil?
      unless terraform.is_a?(Hash)
        raise PathConflictError, "cannot inject the backend: `terraform` is #{terraform.class}, not an object"
      end

      terraform['backend'] = backend
      doc
    end
  end
end
