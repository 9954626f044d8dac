//! Templates several tests share.

/// A VPC with a security group that allows HTTPS from the internal network only: the drift
/// tests open SSH to the world on it behind Terraform's back. `cidr` is the VPC's block and
/// `group` the security group's name, so tests sharing one emulator never meet.
pub fn web_template(cidr: &str, group: &str) -> String {
    format!(
        r#"template :web do
  provider :aws do
    region "us-east-1"
  end
  resource :aws_vpc, :main do
    cidr_block "{cidr}"
  end
  resource :aws_security_group, :web do
    name "{group}"
    description "HTTPS from the internal network only"
    vpc_id ref(:aws_vpc, :main, :id)
    ingress([{{ description: "https", from_port: 443, to_port: 443, protocol: "tcp",
               cidr_blocks: ["10.0.0.0/8"], ipv6_cidr_blocks: [], prefix_list_ids: [],
               security_groups: [], self: false }}])
  end
end
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_web_template_names_its_vpc_block_and_group() {
        let t = super::web_template("10.70.0.0/16", "e2e-web");
        assert!(t.contains(r#"cidr_block "10.70.0.0/16""#));
        assert!(t.contains(r#"name "e2e-web""#));
        assert!(t.contains("ingress([{ description:"));
    }
}
