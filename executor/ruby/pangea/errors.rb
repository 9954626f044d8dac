# frozen_string_literal: true

# Error classes raised while compiling a template. The first two keep the
# names and messages of Pangea's reference engine (abstract-synthesizer), so
# users migrating from Pangea see the diagnostics they already know.
module PangeaCompiler
  # Base class; `Diagnostics` reports these by their short class name.
  class Error < StandardError; end

  # A name that is not one of the seven top-level keywords used at top level.
  class InvalidSynthesizerKeyError < Error
    def initialize(name)
      super("#{name} is invalid for TerraformSynthesizer and should be one of " \
            "#{KEYWORDS.join("\n")}")
    end
  end

  # An attribute called with two or more values.
  class TooManyFieldValuesError < Error
    def initialize(name, args)
      super("field: #{name} requires 1 argument, had #{args.length} which were #{args}")
    end
  end

  # The result of a DSL call (an unknown method) used as a value: the
  # reference engine silently wrote garbage here; we refuse.
  class UnknownHelperError < Error
    def initialize(name, field = nil)
      where = field ? "its result was used as the value of `#{field}`" : 'its result was used as a value'
      super(KEYWORDS.include?(name) ? keyword_message(name, where) : helper_message(name, where))
    end

    private

    def helper_message(name, where)
      "`#{name}` is not a Pangea helper: #{where}. Helpers are #{HELPERS.join(', ')}; " \
        "write Terraform functions as strings, e.g. \"${#{name}(...)}\""
    end

    def keyword_message(name, where)
      "`#{name}` blocks return no value, but #{where}; " \
        'refer to what they define with ref(:type, :name, :attr) or a "${...}" string'
    end
  end

  # A nested block or attribute that has to descend into a non-object value,
  # e.g. `ingress do ... end` after `ingress([...])`.
  class PathConflictError < Error; end

  # Problems with the file as a whole.
  class NoTemplatesError < Error; end
  class TemplateNotFoundError < Error; end
  class DuplicateTemplateError < Error; end
  class InvalidTemplateError < Error; end

  # Problems with pangea.yml or the requested backend.
  class NamespaceConfigError < Error; end
  class NamespaceNotFoundError < Error; end

  # The template called `exit`/`abort`; the compiler must keep going.
  class TemplateExitError < Error; end
end
