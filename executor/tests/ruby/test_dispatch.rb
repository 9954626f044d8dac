# frozen_string_literal: true

require_relative 'test_helper'

# The dispatch rule (PANGEA_DSL.md §3) and the constructs of §4.
class TestDispatch < Minitest::Test
  include CompileHelpers

  def test_provider_block
    assert_equal({ 'provider' => { 'aws' => { 'region' => 'us-east-1' } } },
                 doc(template('provider :aws do region "us-east-1" end')))
  end

  def test_second_provider_block_merges_later_keys_win
    d = doc(template("provider :aws do\n region 'a'\n profile 'p'\nend\nprovider :aws do\n region 'b'\nend"))
    assert_equal({ 'region' => 'b', 'profile' => 'p' }, d['provider']['aws'])
  end

  def test_provider_array_form_and_alias_escapes
    d = doc(template(<<~RUBY))
      provider do
        aws([{ region: "us-east-1" }, { alias: "west", region: "us-west-2" }])
      end
      provider :google do
        send(:alias, "g")
      end
      provider :azurerm do
        method_missing(:alias, "z")
      end
    RUBY
    assert_equal [{ 'region' => 'us-east-1' }, { 'alias' => 'west', 'region' => 'us-west-2' }],
                 d['provider']['aws']
    assert_equal 'g', d['provider']['google']['alias']
    assert_equal 'z', d['provider']['azurerm']['alias']
  end

  def test_top_level_keyword_without_block_writes_nothing_and_warns
    out = compile(template("provider :aws, region: 'x'\nresource :a, :b do x 1 end"))
    assert_equal({ 'resource' => { 'a' => { 'b' => { 'x' => 1 } } } }, out['templates']['t'])
    assert_equal ['BlocklessKeywordWarning'], warning_classes(out)
    assert_equal 2, out['warnings'].first['line']
  end

  def test_resource_with_nested_block_and_capitalised_names
    d = doc(template("resource :aws_vpc, :main do\n cidr_block '10.0.0.0/16'\n tags do\n Name 'x'\n end\nend"))
    assert_equal({ 'cidr_block' => '10.0.0.0/16', 'tags' => { 'Name' => 'x' } },
                 d['resource']['aws_vpc']['main'])
  end

  def test_hash_values_and_odd_keys
    d = doc(template(<<~RUBY))
      resource :r, :a do
        tags({ "kubernetes.io/role/elb" => "1" })
      end
      resource :r, :b do
        tags Name: "x"
        send(:"kubernetes.io/x", "1")
      end
    RUBY
    assert_equal({ 'kubernetes.io/role/elb' => '1' }, d['resource']['r']['a']['tags'])
    assert_equal({ 'tags' => { 'Name' => 'x' }, 'kubernetes.io/x' => '1' }, d['resource']['r']['b'])
  end

  def test_three_names_nest
    assert_equal({ 'resource' => { 'a' => { 'b' => { 'c' => { 'x' => 1 } } } } },
                 doc(template('resource :a, :b, :c do x 1 end')))
  end

  def test_argument_and_block_argument_wins_with_warning
    out = compile(template("terraform do\n backend :s3 do\n bucket 'b'\n end\nend"))
    assert_equal({ 'terraform' => { 'backend' => 's3' } }, out['templates']['t'])
    assert_includes warning_classes(out), 'ArgumentOverridesBlockWarning'
  end

  def test_two_arguments_raise_too_many_field_values
    out = compile(template("resource :a, :b do\n depends_on 'x', 'y'\nend"))
    err = out['errors'].first
    assert_equal 'TooManyFieldValuesError', err['class']
    assert_equal 'field: depends_on requires 1 argument, had 2 which were ["x", "y"]', err['message']
    assert_equal 3, err['line']
  end

  def test_unknown_top_level_name_raises_invalid_synthesizer_key
    err = compile(template('modul :x do end'))['errors'].first
    assert_equal 'InvalidSynthesizerKeyError', err['class']
    assert_equal "modul is invalid for TerraformSynthesizer and should be one of terraform\n" \
                 "provider\nresource\nvariable\nlocals\noutput\ndata", err['message']
  end

  def test_repeated_nested_block_merges_with_warning
    out = compile(template(<<~RUBY))
      resource :aws_security_group, :sg do
        ingress do
          from_port 22
          to_port 22
        end
        ingress do
          from_port 443
        end
      end
    RUBY
    assert_equal({ 'from_port' => 443, 'to_port' => 22 },
                 out['templates']['t']['resource']['aws_security_group']['sg']['ingress'])
    assert_equal [['RepeatedBlockWarning', 7]], out['warnings'].map { |w| [w['class'], w['line']] }
  end

  def test_block_after_array_value_is_an_error
    err = compile(template("resource :a, :b do\n ingress([{ p: 1 }])\n ingress do port 2 end\nend"))['errors'].first
    assert_equal 'PathConflictError', err['class']
  end

  def test_keywords_inside_blocks_are_attributes
    d = doc(template(<<~RUBY))
      resource :kubernetes_config_map, :c do
        provider "kubernetes.other"
        data({ "a.txt" => "x" })
        variable "v"
        output "o"
        locals "l"
        resource "r"
        terraform "t"
        after 1
      end
    RUBY
    assert_equal({ 'provider' => 'kubernetes.other', 'data' => { 'a.txt' => 'x' }, 'variable' => 'v',
                   'output' => 'o', 'locals' => 'l', 'resource' => 'r', 'terraform' => 't', 'after' => 1 },
                 d['resource']['kubernetes_config_map']['c'])
  end

  def test_clashing_ruby_method_names_are_attributes_inside_blocks
    d = doc(template(<<~RUBY))
      resource :r, :n do
        format "json"
        test "StringEquals"
        method "GET"
        hash "h"
        display "d"
        select "s"
        open "o"
        system "echo pwned > /dev/null"
        sleep 5
        type "t"
        timeout 30
        clone do template_uuid "u" end
      end
      output :o do value format("%s-%d", "a", 1) end
    RUBY
    expected = { 'format' => 'json', 'test' => 'StringEquals', 'method' => 'GET', 'hash' => 'h',
                 'display' => 'd', 'select' => 's', 'open' => 'o', 'system' => 'echo pwned > /dev/null',
                 'sleep' => 5, 'type' => 't', 'timeout' => 30, 'clone' => { 'template_uuid' => 'u' } }
    assert_equal expected, d['resource']['r']['n']
    assert_equal 'a-1', d['output']['o']['value'], 'two arguments keep Ruby meaning'
  end

  def test_empty_blocks_vanish_and_referenced_vanished_block_warns
    out = compile(template(<<~RUBY))
      resource :null_resource, :gone do
      end
      resource :aws_instance, :web do
        ebs_block_device do end
        depends_on ["null_resource.gone"]
      end
    RUBY
    assert_equal({ 'resource' => { 'aws_instance' => { 'web' => { 'depends_on' => ['null_resource.gone'] } } } },
                 out['templates']['t'])
    assert_equal [['VanishedReferenceWarning', 2]], out['warnings'].map { |w| [w['class'], w['line']] }
  end

  def test_block_parameters_receive_nil_and_template_receives_synthesizer
    d = doc("template :t do |t|\n resource :a, :b do |x|\n  x_was_nil(x.nil?)\n  same_self(t.equal?(self))\n end\nend\n")
    assert_equal({ 'b' => { 'x_was_nil' => true, 'same_self' => true } }, d['resource']['a'])
  end

  def test_symbol_and_string_names_merge
    d = doc(template("resource :a, :b do x 1 end\nresource 'a', 'b' do y 2 end"))
    assert_equal({ 'x' => 1, 'y' => 2 }, d['resource']['a']['b'])
  end

  def test_hash_values_are_copied_not_shared
    d = doc(template(<<~RUBY))
      common = { Env: "dev" }
      resource :r, :a do
        tags common
        tags do Name "a" end
      end
      resource :r, :b do
        tags common
      end
    RUBY
    assert_equal({ 'Env' => 'dev' }, d['resource']['r']['b']['tags'])
  end

  def test_dsl_errors_stay_fatal_when_rescued
    out = compile(template("resource :a, :b do\n begin\n  x 1, 2\n rescue StandardError\n end\n y 1\nend"))
    assert_equal 'TooManyFieldValuesError', out['errors'].first['class']
    assert_empty out['templates']
  end

  def test_manifest_escape_hatch_for_modules
    d = doc(template("manifest[:module] = { vpc: { source: './vpc' } }"))
    assert_equal({ 'module' => { 'vpc' => { 'source' => './vpc' } } }, d)
  end

  def test_top_level_json_key_order_is_first_use
    d = doc(template("resource :a, :b do x 1 end\nprovider :aws do region 'r' end"))
    assert_equal %w[resource provider], d.keys
  end
end
