# A realistic multi-resource AWS template: the one drift tests change behind Terraform's back.
#
#   pangea-executor compile examples/templates/aws_drift.rb
#   pangea-executor compile --namespace production --out /tmp/ws examples/templates/aws_drift.rb
#
# Bucket names must be globally unique: set PANGEA_BUCKET_PREFIX to make them yours.

PREFIX = ENV.fetch("PANGEA_BUCKET_PREFIX", "pangea-drift-demo")
ZONE = "drift-demo.example.com"

# Top-level helpers are visible inside templates.
def standard_tags(name)
  { Name: name, ManagedBy: "pangea", Environment: "demo" }
end

# A security group rule with every field set, as Terraform JSON wants for inline rules.
def sg_rule(description:, port:, protocol:, cidrs:)
  {
    description: description, from_port: port, to_port: port, protocol: protocol,
    cidr_blocks: cidrs, ipv6_cidr_blocks: [], prefix_list_ids: [], security_groups: [], self: false
  }
end

template :drift_demo do
  terraform do
    required_providers do
      aws do
        source "hashicorp/aws"
        version ">= 5.0"
      end
    end
  end

  provider :aws do
    region "us-east-1"
  end

  variable :app_secret do
    type "string"
    description "Value stored in SSM as a SecureString"
    sensitive true
  end

  resource :aws_s3_bucket, :artifacts do
    bucket "#{PREFIX}-artifacts"
    tags standard_tags("artifacts")
  end

  resource :aws_s3_bucket_versioning, :artifacts do
    bucket ref(:aws_s3_bucket, :artifacts, :id)
    versioning_configuration do
      status "Enabled"
    end
  end

  resource :aws_s3_bucket, :logs do
    bucket "#{PREFIX}-logs"
    tags standard_tags("logs")
  end

  resource :aws_vpc, :main do
    cidr_block "10.42.0.0/16"
    enable_dns_hostnames true
    tags standard_tags("main")
  end

  resource :aws_security_group, :https do
    name "https-internal"
    description "HTTPS from the internal network"
    vpc_id ref(:aws_vpc, :main, :id)
    ingress([sg_rule(description: "https", port: 443, protocol: "tcp", cidrs: ["10.0.0.0/8"])])
    egress([sg_rule(description: "all", port: 0, protocol: "-1", cidrs: ["0.0.0.0/0"])])
    tags standard_tags("https-internal")
  end

  resource :aws_route53_zone, :main do
    name ZONE
    tags standard_tags(ZONE)
  end

  resource :aws_route53_record, :app do
    zone_id ref(:aws_route53_zone, :main, :zone_id)
    name "app.#{ZONE}"
    type "A"
    ttl 300
    records ["10.42.0.10"]
  end

  resource :aws_ssm_parameter, :app_secret do
    name "/#{PREFIX}/app/secret"
    type "SecureString"
    value var(:app_secret)
    tags standard_tags("app-secret")
  end

  output :artifacts_bucket do
    value ref(:aws_s3_bucket, :artifacts, :bucket)
  end

  output :zone_id do
    value ref(:aws_route53_zone, :main, :zone_id)
  end
end
