# frozen_string_literal: true

# Entry point of the Pangea compiler. pangea-executor runs
#   ruby --disable-gems pangea_compile.rb
# with a JSON request on stdin:
#   {"file": PATH, "template": NAME|null, "namespace": NS|null,
#    "config": PATH|null, "backend": null|"none"|{...}}
# and reads ONE JSON object from stdout:
#   {"templates": {NAME: DOCUMENT}, "warnings": [DIAG], "errors": [DIAG]}
# where DIAG is {file, line, class, message, template}. For a person at a
# shell: `ruby pangea_compile.rb FILE [--template T] [--namespace N] [--config C]`.
# Standard library only; no gems are loadable.

Encoding.default_external = Encoding::UTF_8

require 'json'
require 'rbconfig'
%w[errors diagnostics document dispatcher synthesizer source_tree template_file namespace_config
   backend references compiler].each { |lib| require_relative "pangea/#{lib}" }

module PangeaCompiler
  # Ruby's own warnings about the user's code ("found `= literal' in
  # conditional", "already initialized constant") become warnings of the run.
  module RubyWarnings
    def warn(message, *rest, **kw)
      warnings = PangeaCompiler.current_warnings
      match = message.to_s.match(/\A(?<file>.+?):(?<line>\d+): warning: (?<text>.*)\z/m)
      return super unless warnings && match

      warnings.add('RubyWarning', match[:text].strip, nil, file: match[:file], line: match[:line].to_i)
    end
  end

  # Reads the request, runs the compiler, writes the envelope.
  module Main
    module_function

    def run(argv, stdin)
      result = $stdout.dup
      # Template output (puts, child processes) must never corrupt the result:
      # from here on fd 1 is stderr, and the result goes to the saved copy.
      $stdout.reopen($stderr)
      Warning.singleton_class.prepend(RubyWarnings)
      result.write(compile(argv, stdin), "\n")
      result.flush
      0
    end

    def compile(argv, stdin)
      Compiler.new(read_request(argv, stdin)).run
    rescue StandardError, ScriptError => e
      # A bad request or a bug here: still one well-formed envelope.
      diag = Diagnostic.new(nil, nil, 'InternalError', "#{e.class}: #{e.message}", nil)
      JSON.generate('templates' => {}, 'warnings' => [], 'errors' => [diag.to_h])
    end

    def read_request(argv, stdin)
      return parse_argv(argv) unless argv.empty?

      request = JSON.parse(stdin.read)
      raise ArgumentError, 'the request must be a JSON object with "file"' unless request.is_a?(Hash) && request['file']

      request
    end

    def parse_argv(argv)
      require 'optparse'
      request = {}
      rest = OptionParser.new do |o|
        o.on('--template NAME') { |v| request['template'] = v }
        o.on('--namespace NS') { |v| request['namespace'] = v }
        o.on('--config PATH') { |v| request['config'] = v }
        o.on('--no-backend') { request['backend'] = 'none' }
      end.parse(argv)
      raise ArgumentError, 'usage: pangea_compile.rb FILE [options]' unless rest.length == 1

      request.merge('file' => rest.first)
    end
  end
end

exit(PangeaCompiler::Main.run(ARGV, $stdin)) if $PROGRAM_NAME == __FILE__
