# frozen_string_literal: true

require 'rbconfig'

# Diagnostics: errors and warnings as `{file, line, class, message, template}`
# records, located at the line of the USER's file (template or a helper it
# loaded), never at a line inside this compiler.
module PangeaCompiler
  # One error or warning. `line` is nil when no source line applies.
  Diagnostic = Struct.new(:file, :line, :klass, :message, :template) do
    def to_h
      { 'file' => text(file), 'line' => line, 'class' => klass, 'message' => text(message),
        'template' => template }
    end

    private

    # Messages may quote user strings in any encoding; the envelope is UTF-8.
    def text(value)
      value&.to_s&.dup&.force_encoding(Encoding::UTF_8)&.scrub('?')
    end
  end

  # Finds user-code locations in backtraces and turns exceptions into diagnostics.
  module Diagnostics
    COMPILER_DIR = File.expand_path('..', __dir__)
    # Ruby's own library (json, yaml, ...): an error raised in there is reported
    # at the user line that called it.
    RUBY_LIB_DIRS = [RbConfig::CONFIG['rubylibprefix'], RbConfig::CONFIG['rubyarchdir']]
                    .compact.map { |d| File.expand_path(d) }.freeze

    module_function

    # True for a frame in code the user wrote (not this compiler, not Ruby internals).
    def user_frame?(loc)
      user_path?(loc.absolute_path || loc.path)
    end

    def user_path?(path)
      return false if path.nil? || path.start_with?('<internal:')

      full = File.expand_path(path)
      ([COMPILER_DIR] + RUBY_LIB_DIRS).none? { |dir| full.start_with?("#{dir}/") }
    end

    # The innermost user frame of the current call stack.
    def caller_location
      caller_locations(2).find { |loc| user_frame?(loc) }
    end

    # An exception as a diagnostic at its innermost user frame.
    def from_exception(error, template: nil, fallback: nil)
      return from_syntax_error(error, template) if error.is_a?(SyntaxError)

      loc = (error.backtrace_locations || []).find { |l| user_frame?(l) }
      file, line = loc ? [loc.path, loc.lineno] : location_from_strings(error.backtrace, fallback)
      Diagnostic.new(file, line, class_name(error), clean_message(error), template)
    end

    # SyntaxError carries its location in the message ("path:line: text"); a
    # message may list several errors, each prefixed the same way.
    def from_syntax_error(error, template)
      text = error.message.to_s
      match = text.match(/\A(?<file>[^\n]+?):(?<line>\d+): (?<rest>.*)\z/m)
      return Diagnostic.new(nil, nil, 'SyntaxError', text, template) unless match

      message = match[:rest].gsub(/^#{Regexp.escape(match[:file])}:(\d+): /, 'line \1: ')
      Diagnostic.new(match[:file], match[:line].to_i, 'SyntaxError', message.strip, template)
    end

    # Errors that lost their locations (e.g. raised with a custom backtrace).
    def location_from_strings(backtrace, fallback)
      (backtrace || []).each do |entry|
        m = entry.match(/\A(.+?):(\d+)(?::|\z)/)
        next unless m && user_path?(m[1])

        return [m[1], m[2].to_i]
      end
      fallback || [nil, nil]
    end

    # Our own classes by short name (as the reference engine names them);
    # everything else fully qualified (e.g. JSON::GeneratorError).
    def class_name(error)
      name = error.class.name || error.class.to_s
      name.start_with?('PangeaCompiler::') ? name.split('::').last : name
    end

    # NameError/NoMethodError messages embed the receiver's inspect output and,
    # with did_you_mean, suggestions on extra lines; keep the first paragraph.
    def clean_message(error)
      msg = error.respond_to?(:original_message) ? error.original_message : error.message
      msg.to_s.sub(/\n\s*\n.*\z/m, '').strip
    end
  end

  # Collects warnings for one compile run, de-duplicated (a loop that repeats
  # the same block warns once per source line, not once per iteration).
  class Warnings
    def initialize
      @list = []
      @seen = {}
      @template = nil
    end

    attr_accessor :template

    def add(klass, message, location = Diagnostics.caller_location, file: nil, line: nil)
      file ||= location&.path
      line ||= location&.lineno
      key = [file, line, klass, message, @template]
      return if @seen[key]

      @seen[key] = true
      @list << Diagnostic.new(file, line, klass, message, @template)
    end

    def to_a
      @list.map(&:to_h)
    end
  end
end
