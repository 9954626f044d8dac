# frozen_string_literal: true

# Shared setup for the compiler's minitest suite: load the compiler from
# executor/ruby and compile template source text written to a temp dir.
require 'minitest/autorun'
require 'json'
require 'tmpdir'
require_relative '../../ruby/pangea_compile'

module CompileHelpers
  # Compiles `source` (written as main.rb, plus `files` beside it) and returns
  # the parsed envelope. No backend unless the request asks for one.
  def compile(source, files: {}, **request)
    Dir.mktmpdir('pangea-test') do |dir|
      write_files(dir, files.merge('main.rb' => source))
      req = { 'file' => File.join(dir, 'main.rb'), 'backend' => 'none' }
      request.each { |k, v| req[k.to_s] = v }
      req['config'] = File.join(dir, req['config']) if req['config']
      JSON.parse(PangeaCompiler::Compiler.new(req).run)
    end
  end

  # The document of the only (or named) template, failing on any error.
  def doc(source, name = nil, **opts)
    out = compile(source, **opts)
    assert_empty out['errors'], "unexpected errors: #{out['errors']}"
    name ? out['templates'].fetch(name) : out['templates'].values.first
  end

  def template(body)
    "template :t do\n#{body}\nend\n"
  end

  def warning_classes(out)
    out['warnings'].map { |w| w['class'] }
  end

  private

  def write_files(dir, files)
    files.each do |name, text|
      path = File.join(dir, name)
      FileUtils.mkdir_p(File.dirname(path))
      File.write(path, text)
    end
  end
end
