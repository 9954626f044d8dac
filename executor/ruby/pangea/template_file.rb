# frozen_string_literal: true

# Whole-file evaluation: the template file is loaded as real Ruby at top
# level (top-level methods, constants and locals are visible to templates,
# `require_relative` works from the file's own directory), while a temporary
# `template` method records every `template :name do ... end` in file order.
module PangeaCompiler
  # One captured template block and where it was declared.
  Template = Struct.new(:name, :block, :file, :line)

  # Loads a template file and returns its templates.
  class TemplateFile
    NAME_PATTERN = /\A[A-Za-z0-9_][A-Za-z0-9_-]*\z/

    def initialize(path)
      @path = path
      @templates = []
    end

    # Raises whatever the file raises (SyntaxError included); the caller turns
    # it into a diagnostic.
    def load_templates
      with_template_method { Kernel.load(@path, false) }
      raise NoTemplatesError, "no `template :name do ... end` block found in #{@path}" if @templates.empty?

      @templates
    end

    private

    def with_template_method
      main = TOPLEVEL_BINDING.receiver
      collector = self
      main.define_singleton_method(:template) do |name = nil, &block|
        collector.send(:record, name, block, caller_locations(1, 1).first)
      end
      yield
    ensure
      main.singleton_class.send(:remove_method, :template)
    end

    def record(name, block, loc)
      name = name.to_s
      raise InvalidTemplateError, "template #{name.inspect} has no block" unless block
      unless NAME_PATTERN.match?(name)
        raise InvalidTemplateError,
              "template name #{name.inspect} must be letters, digits, `_` or `-` " \
              '(it names a workspace directory and a state key)'
      end
      check_duplicate(name)
      @templates << Template.new(name, block, loc&.path, loc&.lineno)
      nil
    end

    # Each template has its own workspace and state; two with one name would
    # silently share them.
    def check_duplicate(name)
      first = @templates.find { |t| t.name == name }
      return unless first

      raise DuplicateTemplateError, "template :#{name} is defined twice (first at line #{first.line})"
    end
  end
end
