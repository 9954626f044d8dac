# frozen_string_literal: true

# Empty blocks vanish from the JSON (as in the reference engine). That is
# harmless unless something refers to what vanished, which Terraform would
# then reject far from the cause; this finds those references.
module PangeaCompiler
  module References
    module_function

    # Warns once per vanished block that is referenced from a string value.
    def check(doc, vanished, warnings)
      vanished.each do |gone|
        address = address_of(gone)
        next unless address && Document.dig(doc, [gone.keyword, *gone.names]).nil?

        user = first_reference(doc, address)
        next unless user

        warnings.add('VanishedReferenceWarning',
                     "#{gone.keyword} `#{address}` has an empty block and is omitted from the " \
                     "JSON, but `#{user.join('.')}` refers to it", nil, file: gone.file, line: gone.line)
      end
    end

    # How Terraform refers to a top-level block, when it can be referred to.
    def address_of(gone)
      case gone.keyword
      when 'resource' then gone.names.length == 2 ? gone.names.join('.') : nil
      when 'data' then gone.names.length == 2 ? "data.#{gone.names.join('.')}" : nil
      when 'variable' then gone.names.length == 1 ? "var.#{gone.names.first}" : nil
      end
    end

    def first_reference(doc, address)
      pattern = /(?<![\w.-])#{Regexp.escape(address)}(?![\w-])/
      Document.each_string(doc) { |text, path| return path if pattern.match?(text) }
      nil
    end
  end
end
