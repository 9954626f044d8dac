# frozen_string_literal: true

# The Terraform document being built: string keys, values copied on insert,
# and the "bury" write of the reference engine (create intermediate objects,
# overwrite the leaf).
module PangeaCompiler
  # What every DSL call returns. The reference engine returned the keyword
  # array, which leaked into documents when an unknown helper was used as a
  # value (`user_data base64encode("x")`); this object refuses to be a value.
  class NoValue
    def initialize(name)
      @name = name
    end

    attr_reader :name

    def inspect
      "#<no value: result of DSL call `#{@name}`>"
    end

    def to_s
      raise UnknownHelperError, @name
    end
    alias to_str to_s

    def to_json(*)
      raise UnknownHelperError, @name
    end
  end

  # Pure functions over the document hash.
  module Document
    module_function

    # JSON turns keys into strings with `to_s`; doing it on insert makes
    # `resource :t` and `resource "t"` the same key (merge, not duplicate).
    def key(value)
      value.is_a?(String) ? value : value.to_s
    end

    # Deep copy with string keys, so later nested blocks never mutate a hash
    # the template shares between resources. `field` names the attribute for
    # error messages.
    def copy(value, field)
      case value
      when NoValue then raise UnknownHelperError.new(value.name, field)
      when Hash then value.each_with_object({}) { |(k, v), out| out[key(k)] = copy(v, field) }
      when Array then value.map { |v| copy(v, field) }
      when String then value.dup
      else value
      end
    end

    # SET(doc, path, value): missing or false intermediates become objects;
    # descending into anything else is an error; the leaf is overwritten.
    def bury(doc, path, value)
      node = doc
      path[0...-1].each_with_index do |k, i|
        node[k] = {} unless node[k]
        node = node[k]
        next if node.is_a?(Hash)

        raise PathConflictError,
              "cannot write `#{path.join('.')}`: `#{path[0..i].join('.')}` already holds " \
              "#{node.class.name.downcase} #{node.inspect[0, 60]}, not an object"
      end
      node[path.last] = value
    end

    # The value at `path`, or nil.
    def dig(doc, path)
      path.reduce(doc) { |node, k| node.is_a?(Hash) ? node[k] : nil }
    end

    # Whole-document pass after the template ran: `manifest[:x] = ...` may have
    # inserted symbol keys or shared objects behind the DSL's back.
    def normalize(doc)
      copy(doc, 'manifest')
    end

    # Calls `yield(string, path)` for every string value in the document.
    def each_string(node, path = [], &block)
      case node
      when Hash then node.each { |k, v| each_string(v, path + [k], &block) }
      when Array then node.each_with_index { |v, i| each_string(v, path + [i], &block) }
      when String then yield node, path
      end
    end
  end
end
