//! Glob matching for the template's severity and ignore rules.

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::ReportError;

/// Compiles one glob. `*` crosses dots, so `tags.*` matches `tags.Name` and deeper paths.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, ReportError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|source| glob_error(pattern, source))
}

/// Compiles a resource address glob such as `aws_s3_bucket.*` or `aws_instance.web[*]`.
///
/// Brackets in an address are always literal (`aws_instance.web[0]`, `aws_x.y["k"]`), never a
/// character class, so they are escaped: `web[*]` then means every instance of `web`.
pub fn compile_address_glob(pattern: &str) -> Result<GlobMatcher, ReportError> {
    let escaped = pattern.replace('[', r"\[").replace(']', r"\]");
    GlobBuilder::new(&escaped)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|source| glob_error(pattern, source))
}

fn glob_error(pattern: &str, source: globset::Error) -> ReportError {
    ReportError::Glob {
        pattern: pattern.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::exact("aws_s3_bucket.logs", "aws_s3_bucket.logs", true)]
    #[case::glob("aws_s3_bucket.*", "aws_s3_bucket.logs", true)]
    #[case::glob_other_type("aws_s3_bucket.*", "aws_vpc.main", false)]
    #[case::count_literal("aws_instance.web[0]", "aws_instance.web[0]", true)]
    #[case::count_other_index("aws_instance.web[0]", "aws_instance.web[1]", false)]
    #[case::count_not_a_class("aws_instance.web[0]", "aws_instance.web0", false)]
    #[case::every_instance("aws_instance.web[*]", "aws_instance.web[1]", true)]
    #[case::every_key("aws_instance.web[*]", r#"aws_instance.web["k"]"#, true)]
    #[case::for_each_literal(r#"aws_x.y["k"]"#, r#"aws_x.y["k"]"#, true)]
    #[case::module_glob("module.*.aws_x.y", "module.net.aws_x.y", true)]
    #[case::alternation("aws_{vpc,subnet}.*", "aws_subnet.a", true)]
    fn matches_addresses(#[case] pattern: &str, #[case] address: &str, #[case] hit: bool) {
        assert_eq!(
            compile_address_glob(pattern).unwrap().is_match(address),
            hit
        );
    }

    #[rstest]
    #[case::attribute(compile_glob("tags.{a"))]
    #[case::address(compile_address_glob("aws_x.{y"))]
    fn rejects_an_invalid_glob_naming_it(#[case] result: Result<GlobMatcher, ReportError>) {
        let err = result.unwrap_err();
        assert!(err.to_string().contains(".{"), "{err}");
    }
}
