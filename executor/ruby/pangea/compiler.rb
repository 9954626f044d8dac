# frozen_string_literal: true

require 'json'

# One compile run: load the file, compile each selected template to its own
# document, inject backends, and produce the result envelope for the Rust
# side: {"templates": {name: document}, "warnings": [...], "errors": [...]}.
module PangeaCompiler
  class << self
    # The warnings of the run in progress, for Ruby's own parser warnings
    # (see RubyWarnings in pangea_compile.rb).
    attr_accessor :current_warnings
  end

  # Compiles one request (a Hash with string keys: file, template, namespace,
  # config, backend).
  class Compiler
    def initialize(request)
      @request = request
      @file = request['file'].to_s
      @warnings = Warnings.new
      @errors = []
      @compiled = []
    end

    # The envelope as a JSON string.
    def run
      PangeaCompiler.current_warnings = @warnings
      SourceTree.confine(@request['root'] || File.dirname(File.expand_path(@file))) if File.exist?(@file)
      templates = guard(nil) { select(TemplateFile.new(@file).load_templates) }
      backend = templates && guard(nil) { BackendChoice.new(@request, @warnings) }
      templates.each { |t| compile_template(t, backend) } if backend
      envelope
    ensure
      PangeaCompiler.current_warnings = nil
    end

    private

    def select(templates)
      wanted = @request['template']
      return templates if wanted.nil? || wanted.to_s.empty?

      found = templates.select { |t| t.name == wanted.to_s }
      raise TemplateNotFoundError, "Template '#{wanted}' not found in #{@file}" if found.empty?

      found
    end

    def compile_template(template, backend)
      @warnings.template = template.name
      guard(template) do
        doc = evaluate(template)
        if doc.empty?
          @warnings.add('EmptyTemplateWarning', "template :#{template.name} defines nothing", nil,
                        file: template.file, line: template.line)
        end
        BackendInjector.inject(doc, backend.for(template.name))
        @compiled << [template.name, JSON.generate(doc, max_nesting: false)]
      end
    ensure
      @warnings.template = nil
    end

    # Runs the template body with a fresh synthesizer as `self`; the block
    # parameter, if any, also receives it (§6.10).
    def evaluate(template)
      dispatcher = Dispatcher.new(@warnings)
      synth = Synthesizer.new(template.name, dispatcher)
      synth.instance_exec(synth, &template.block)
      raise dispatcher.fatal if dispatcher.fatal # rescued by the template, still fatal (§3.6)

      doc = Document.normalize(dispatcher.doc)
      References.check(doc, dispatcher.vanished, @warnings)
      doc
    end

    # Runs a step; any exception becomes an error diagnostic (located in the
    # user's file) and the step's result is nil.
    def guard(template)
      yield || true
    rescue SignalException
      raise
    rescue SystemExit => e
      @errors << exit_diagnostic(e, template)
      nil
    rescue Exception => e # rubocop:disable Lint/RescueException -- user code may raise anything
      fallback = template ? [template.file, template.line] : [@file, nil]
      @errors << Diagnostics.from_exception(e, template: template&.name, fallback: fallback)
      nil
    end

    def exit_diagnostic(error, template)
      loc = (error.backtrace_locations || []).find { |l| Diagnostics.user_frame?(l) }
      Diagnostic.new(loc&.path || @file, loc&.lineno, 'TemplateExitError',
                     "the template called exit (status #{error.status}); templates must not exit",
                     template&.name)
    end

    def envelope
      templates = @compiled.map { |name, json| "#{JSON.generate(name)}:#{json}" }.join(',')
      "{\"templates\":{#{templates}},\"warnings\":#{JSON.generate(@warnings.to_a)}," \
        "\"errors\":#{JSON.generate(@errors.map(&:to_h))}}"
    end
  end
end
