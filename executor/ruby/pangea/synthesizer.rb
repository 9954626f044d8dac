# frozen_string_literal: true

require 'json'

# The object that is `self` inside a template body. It is a plain Object (so
# ENV, File, puts, constants and top-level helper methods all work) with as
# few methods of its own as possible: every method it defines is a name a
# template can no longer use as an attribute. All state lives in one
# Dispatcher behind an obscure instance variable.
module PangeaCompiler
  HELPERS = %w[ref data_ref var local jsonencode managed_tags manifest].freeze

  # Kernel/Object methods that are also common Terraform attribute names
  # (§6.6). Inside a block, called with one value or a block, they write an
  # attribute instead of running the Ruby method (`system "x"` would run a
  # shell command, `format "json"` would be dropped). Everywhere else Ruby's
  # meaning stays. `puts`, `raise`, `require` and friends are deliberately not
  # here: templates use them for their Ruby meaning inside blocks too.
  CLASHING_NAMES = %i[
    format sprintf test method hash display select open system exec spawn fork
    sleep clone dup load type timeout rand srand caller extend trap
  ].freeze

  # Conversions Ruby probes with method_missing; answering them would turn the
  # synthesizer into an array or string in surprising places.
  IMPLICIT_CONVERSIONS = %i[to_ary to_str to_hash to_proc to_io to_int to_path to_sym].freeze

  # `self` of a template body.
  class Synthesizer
    def initialize(template_name, dispatcher)
      @__pangea_template = template_name
      @__pangea_dispatcher = dispatcher
    end

    # Error messages (NameError) show the receiver; keep it short.
    def inspect
      "#<template :#{@__pangea_template}>"
    end
    alias to_s inspect

    # "${type.name.attr}"
    def ref(type, name, attr)
      "${#{type}.#{name}.#{attr}}"
    end

    # "${data.type.name.attr}"
    def data_ref(type, name, attr)
      "${data.#{type}.#{name}.#{attr}}"
    end

    # "${var.name}"
    def var(name)
      "${var.#{name}}"
    end

    # "${local.name}"
    def local(name)
      "${local.#{name}}"
    end

    # Compile-time JSON string (not Terraform's jsonencode()).
    def jsonencode(value)
      JSON.generate(value)
    end

    def managed_tags
      { ManagedBy: 'pangea', Namespace: ENV['PANGEA_NAMESPACE'] || 'default' }
    end

    # The raw document: the escape hatch for what the DSL cannot express
    # (`manifest[:module] = {...}`).
    def manifest
      @__pangea_dispatcher.doc
    end

    def method_missing(name, *args, &block)
      return super if IMPLICIT_CONVERSIONS.include?(name)

      @__pangea_dispatcher.dispatch(name, args, block)
    end

    def respond_to_missing?(name, include_private = false)
      return false if IMPLICIT_CONVERSIONS.include?(name)

      super
    end

    CLASHING_NAMES.each do |name|
      define_method(name) do |*args, &block|
        if @__pangea_dispatcher.inside_block? && (args.length == 1 || block)
          @__pangea_dispatcher.dispatch(name, args, block)
        elsif defined?(super)
          super(*args, &block)
        else
          @__pangea_dispatcher.dispatch(name, args, block)
        end
      end
      ruby2_keywords(name)
    end
  end
end
