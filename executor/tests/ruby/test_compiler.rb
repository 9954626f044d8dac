# frozen_string_literal: true

require_relative 'test_helper'

# File-level behaviour: templates, helpers, values, diagnostics.
class TestCompiler < Minitest::Test
  include CompileHelpers

  def test_every_template_in_file_order_with_top_level_helpers_and_constants
    out = compile(<<~RUBY)
      PREFIX = "app"
      def tags_for(name) = { Name: "\#{PREFIX}-\#{name}" }
      template :b_first do
        resource :r, :x do tags tags_for("x") end
      end
      template :a_second do
        resource :r, :y do tags tags_for("y") end
      end
    RUBY
    assert_equal %w[b_first a_second], out['templates'].keys
    assert_equal({ 'Name' => 'app-y' }, out['templates']['a_second']['resource']['r']['y']['tags'])
  end

  def test_template_filter_and_missing_template
    src = "template :a do\n resource :r, :a do x 1 end\nend\ntemplate :b do\n resource :r, :b do x 1 end\nend\n"
    assert_equal ['b'], compile(src, template: 'b')['templates'].keys
    err = compile(src, template: 'c')['errors'].first
    assert_equal 'TemplateNotFoundError', err['class']
    assert_match(/Template 'c' not found/, err['message'])
  end

  def test_file_without_template_is_an_error
    assert_equal 'NoTemplatesError', compile("x = 1\n")['errors'].first['class']
  end

  def test_duplicate_template_name_is_an_error
    err = compile("template :a do end\ntemplate :a do end\n")['errors'].first
    assert_equal %w[DuplicateTemplateError 2], [err['class'], err['line'].to_s]
  end

  def test_reference_helpers
    d = doc(template(<<~RUBY))
      output :o do
        value [ref(:aws_vpc, :main, :id), data_ref(:aws_ami, :u, :id), var(:region), local(:tags)]
      end
    RUBY
    assert_equal ['${aws_vpc.main.id}', '${data.aws_ami.u.id}', '${var.region}', '${local.tags}'],
                 d['output']['o']['value']
  end

  def test_helper_arity_is_exact
    err = compile(template("output :o do\n value var(:x, 'default')\nend"))['errors'].first
    assert_equal ['ArgumentError', 3], [err['class'], err['line']], 'file line, not body line'
    assert_equal 'wrong number of arguments (given 2, expected 1)', err['message']
  end

  def test_jsonencode_and_managed_tags
    ENV['PANGEA_NAMESPACE'] = 'staging'
    d = doc(template("resource :r, :n do\n policy jsonencode({ Version: '2012', Statement: [] })\n tags managed_tags\nend"))
    assert_equal '{"Version":"2012","Statement":[]}', d['resource']['r']['n']['policy']
    assert_equal({ 'ManagedBy' => 'pangea', 'Namespace' => 'staging' }, d['resource']['r']['n']['tags'])
  ensure
    ENV.delete('PANGEA_NAMESPACE')
  end

  def test_unknown_helper_used_as_value_is_an_error
    err = compile(template("resource :r, :n do\n user_data base64encode('x')\nend"))['errors'].first
    assert_equal ['UnknownHelperError', 3], [err['class'], err['line']]
    assert_match(/`base64encode` is not a Pangea helper/, err['message'])
  end

  def test_numbers_keep_their_type_and_text_stays_intact
    out = compile(template("output :o do\n value({ f: 30.0, i: 30, big: 123456789012345678901234567890, s: '80', t: 'Zürich ✓ </a>' })\nend"))
    value = out['templates']['t']['output']['o']['value']
    assert_kind_of Float, value['f']
    assert_kind_of Integer, value['i']
    assert_equal 123_456_789_012_345_678_901_234_567_890, value['big']
    assert_equal 'Zürich ✓ </a>', value['t']
  end

  def test_raw_json_text_has_floats_and_unescaped_utf8
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, 'm.rb'), template("output :o do\n value [30.0, 'é/<']\nend"))
      raw = PangeaCompiler::Compiler.new('file' => File.join(dir, 'm.rb'), 'backend' => 'none').run
      assert_includes raw, '[30.0,"é/<"]'
    end
  end

  def test_runtime_error_in_second_template_names_file_line
    out = compile("template :a do\n resource :r, :a do x 1 end\nend\n\ntemplate :b do\n  resource :r, :b do\n    x nil.upcase\n  end\nend\n")
    err = out['errors'].first
    assert_equal [7, 'NoMethodError', 'b'], [err['line'], err['class'], err['template']]
    assert_match(%r{/main\.rb\z}, err['file'])
    assert_equal ['a'], out['templates'].keys, 'the first template still compiled'
  end

  def test_syntax_error_names_file_line
    err = compile("template :a do\n resource :r, :a do\n  x [1\n end\nend\n")['errors'].first
    assert_equal ['SyntaxError', 4], [err['class'], err['line']]
    refute_match(/main\.rb:\d+:/, err['message'], 'location is in file/line, not repeated')
  end

  def test_require_relative_helper_file
    out = compile("require_relative 'lib/naming'\ntemplate :t do\n resource :r, :n do name Naming.bucket('x') end\nend\n",
                  files: { 'lib/naming.rb' => "module Naming\n def self.bucket(n) = \"acme-\#{n}\"\nend\n" })
    assert_equal 'acme-x', out['templates']['t']['resource']['r']['n']['name']
  end

  def test_error_inside_helper_file_names_helper_file
    out = compile("require_relative 'lib/bad'\ntemplate :t do\n resource :r, :n do name Bad.go end\nend\n",
                  files: { 'lib/bad.rb' => "module Bad\n  def self.go\n    raise ArgumentError, 'bad input'\n  end\nend\n" })
    err = out['errors'].first
    assert_equal ['ArgumentError', 3, 'bad input'], [err['class'], err['line'], err['message']]
    assert_match(%r{lib/bad\.rb\z}, err['file'])
  end

  def test_gems_are_not_loadable_here_but_stdlib_is
    out = compile(template("require 'base64'\noutput :o do value Base64.strict_encode64('x') end"))
    assert_equal 'eA==', out['templates']['t']['output']['o']['value']
  end

  def test_env_and_loops
    ENV['PANGEA_TEST_BUCKETS'] = 'a,b'
    d = doc(template("ENV.fetch('PANGEA_TEST_BUCKETS').split(',').each do |n|\n resource :aws_s3_bucket, n do bucket \"x-\#{n}\" end\nend"))
    assert_equal %w[a b], d['resource']['aws_s3_bucket'].keys
  ensure
    ENV.delete('PANGEA_TEST_BUCKETS')
  end

  def test_empty_template_warns
    out = compile("template :t do\nend\n")
    assert_equal({}, out['templates']['t'])
    assert_equal [['EmptyTemplateWarning', 1]], out['warnings'].map { |w| [w['class'], w['line']] }
  end

  def test_exit_in_template_is_an_error_not_an_exit
    err = compile(template('exit 3'))['errors'].first
    assert_equal 'TemplateExitError', err['class']
  end

  def test_nan_is_a_generator_error
    err = compile(template('output :o do value Float::NAN end'))['errors'].first
    assert_equal 'JSON::GeneratorError', err['class']
  end
end
