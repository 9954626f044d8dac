# frozen_string_literal: true

require_relative 'test_helper'

# Backend injection from pangea.yml (PANGEA_DSL.md §7) and caller overrides.
class TestNamespace < Minitest::Test
  include CompileHelpers

  CONFIG = <<~YAML
    default_namespace: dev
    namespaces:
      dev:
        state:
          type: local
          path: states
      single:
        state:
          type: local
          path: one.tfstate
      prod:
        state:
          type: s3
          bucket: b
          key: pangea/prod
          region: us-east-1
          lock: locks
          encrypt: true
          kms_key_id: dropped
      broken:
        state:
          type: gcs
  YAML

  SRC = "template :web do\n resource :r, :n do x 1 end\nend\n" \
        "template :db do\n terraform do\n  required_version '>= 1.5'\n  backend(s3: { bucket: 'own' })\n end\n resource :r, :m do x 1 end\nend\n"

  def run_ns(**opts)
    compile(SRC, files: { 'pangea.yml' => CONFIG }, backend: nil, **opts)
  end

  def test_s3_key_per_template_and_only_five_fields
    out = run_ns(namespace: 'prod')
    assert_equal({ 's3' => { 'bucket' => 'b', 'key' => 'pangea/prod/web/terraform.tfstate', 'region' => 'us-east-1',
                             'dynamodb_table' => 'locks', 'encrypt' => true } },
                 out['templates']['web']['terraform']['backend'])
  end

  def test_terraform_appended_last_or_kept_in_place_with_backend_replaced
    out = run_ns(namespace: 'prod')
    assert_equal %w[resource terraform], out['templates']['web'].keys
    db = out['templates']['db']
    assert_equal %w[terraform resource], db.keys
    assert_equal %w[required_version backend], db['terraform'].keys
    assert_equal 'pangea/prod/db/terraform.tfstate', db['terraform']['backend']['s3']['key']
  end

  def test_local_path_rule_and_default_namespace
    out = run_ns
    assert_equal({ 'local' => { 'path' => 'states/web.tfstate' } }, out['templates']['web']['terraform']['backend'])
    single = run_ns(namespace: 'single')
    assert_equal 'one.tfstate', single['templates']['db']['terraform']['backend']['local']['path']
  end

  def test_unknown_namespace_and_unsupported_type
    assert_equal 'NamespaceNotFoundError', run_ns(namespace: 'nope')['errors'].first['class']
    err = run_ns(namespace: 'broken')['errors'].first
    assert_equal 'NamespaceConfigError', err['class']
  end

  def test_pangea_yaml_wins_over_yml
    out = compile(SRC, files: { 'pangea.yml' => CONFIG, 'pangea.yaml' => CONFIG.sub('path: states', 'path: yaml') },
                       backend: nil)
    assert_equal 'yaml/web.tfstate', out['templates']['web']['terraform']['backend']['local']['path']
  end

  def test_explicit_config_path
    out = compile(SRC, files: { 'conf/other.yml' => CONFIG }, backend: nil, config: 'conf/other.yml', namespace: 'prod')
    assert_equal 'b', out['templates']['web']['terraform']['backend']['s3']['bucket']
  end

  def test_no_config_means_no_backend
    out = compile(SRC, backend: nil, namespace: 'prod')
    assert_nil out['templates']['web']['terraform']
    assert_equal ['NoNamespaceConfigWarning'], warning_classes(out)
  end

  def test_override_and_none
    kube = { 'kubernetes' => { 'secret_suffix' => 'web' } }
    out = compile(SRC, files: { 'pangea.yml' => CONFIG }, backend: kube, namespace: 'prod')
    assert_equal kube, out['templates']['db']['terraform']['backend']
    none = compile(SRC, files: { 'pangea.yml' => CONFIG }, backend: 'none', namespace: 'prod')
    assert_equal({ 's3' => { 'bucket' => 'own' } }, none['templates']['db']['terraform']['backend'])
    assert_nil none['templates']['web']['terraform']
  end
end
