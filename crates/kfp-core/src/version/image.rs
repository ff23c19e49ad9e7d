//! The tag a Pipeline version starts with: Go's `reference.TagNameOnly(reference.ParseNormalizedNamed(image))`, as
//! the Go operator's `Pipeline.ComputeVersion` uses it. Each Go operator links its own reference parser:
//! - head: `github.com/distribution/reference` v0.6.0;
//! - v0.7.0: the `reference` package of `github.com/docker/distribution` v2, which differs in three ways: no IPv6
//!   registry (`[::1]:5000/img:dev` is not a reference), a first path component with upper case but no `.` or `:`
//!   is not a registry (`UPPER/img:tag` is a Docker Hub repository, refused as not lower case), and the 255
//!   character limit counts the registry too.
//!
//! Both use `github.com/opencontainers/go-digest` v1.0.0 for digests.

use std::sync::LazyLock;

use regex::Regex;

use super::HashAlgorithm;

// The reference grammar (regexp.go of both libraries). Go's `\w` is ASCII-only, spelled out here because the regex
// crate's `\w` is Unicode.
const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const OPTIONAL_PORT: &str = "(?::[0-9]+)?";
const TAG: &str = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";

fn domain_and_port(algorithm: HashAlgorithm) -> String {
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    match algorithm {
        HashAlgorithm::Head => format!("(?:{domain_name}|{IPV6_ADDRESS}){OPTIONAL_PORT}"),
        HashAlgorithm::V0_7_0 => format!("{domain_name}{OPTIONAL_PORT}"),
    }
}

fn remote_name() -> String {
    let path_component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{path_component}(?:/{path_component})*")
}

/// `ReferenceRegexp`: `^(name)(?::(tag))?(?:@(digest))?$`.
fn reference_regex(algorithm: HashAlgorithm) -> Option<Regex> {
    let name = format!("(?:{}/)?{}", domain_and_port(algorithm), remote_name());
    Regex::new(&format!("^({name})(?::({TAG}))?(?:@({DIGEST}))?$")).ok()
}

static REFERENCE_HEAD: LazyLock<Option<Regex>> = LazyLock::new(|| reference_regex(HashAlgorithm::Head));
static REFERENCE_V0_7_0: LazyLock<Option<Regex>> = LazyLock::new(|| reference_regex(HashAlgorithm::V0_7_0));

/// `anchoredNameRegexp` of the head library: `^(?:(domainAndPort)/)?(remoteName)$`.
static ANCHORED_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        "^(?:({})/)?({})$",
        domain_and_port(HashAlgorithm::Head),
        remote_name()
    ))
    .ok()
});

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const REPOSITORY_NAME_TOTAL_LENGTH_MAX: usize = 255;

/// The tag of `image` when Go's `ParseNormalizedNamed` accepts it and `TagNameOnly` makes it a `NamedTagged`:
/// its tag, or `latest` when it has neither tag nor digest. `None` for a digest-only reference or an image that
/// is not a valid reference.
pub(crate) fn tag(image: &str, algorithm: HashAlgorithm) -> Option<&str> {
    // anchoredIdentifierRegexp: a bare 64-character hex string is refused as a repository name.
    if image.len() == 64 && image.bytes().all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9')) {
        return None;
    }
    let (domain, prefix, remainder) = split_docker_domain(image, algorithm);
    let remote = remainder.split(':').next().unwrap_or_default();
    // `strings.ToLower(remote) != remote` refuses the image. Non-ASCII input fails the grammar below either way.
    if remote.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let reference = [domain, "/", prefix, remainder].concat();
    let (tag, digest) = parse(&reference, algorithm)?;
    if let Some(digest) = digest {
        validate_digest(digest)?;
    }
    match (tag, digest) {
        // `remainder` is a suffix of both `image` and `reference`, and holds the tag: borrow it from `image`.
        (Some(tag), _) => {
            let offset = (tag.as_ptr() as usize).checked_sub(reference.as_ptr() as usize)?;
            let from_end = reference.len().checked_sub(offset)?;
            image.get(image.len().checked_sub(from_end)?..)?.get(..tag.len())
        }
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG),
    }
}

/// `splitDockerDomain`, with the `library/` prefix kept apart so nothing is allocated here.
fn split_docker_domain(name: &str, algorithm: HashAlgorithm) -> (&str, &'static str, &str) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX, name);
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':'])
        // Only the head library takes an upper-case first component for a registry.
        || (algorithm == HashAlgorithm::Head && maybe_domain.bytes().any(|b| b.is_ascii_uppercase()))
    {
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (domain, OFFICIAL_REPO_PREFIX, remote)
    } else {
        (domain, "", remote)
    }
}

/// `reference.Parse`: the tag and digest of a valid reference.
///
/// Where the grammar matches, the parts are unambiguous: the digest follows the only `@`, and the tag follows the
/// last `:` when no `/` comes after it (a `:` before a `/` is a registry port). So a match test and a split do
/// what Go's capture groups do, without the cost of captures.
fn parse(reference: &str, algorithm: HashAlgorithm) -> Option<(Option<&str>, Option<&str>)> {
    let grammar = match algorithm {
        HashAlgorithm::Head => &REFERENCE_HEAD,
        HashAlgorithm::V0_7_0 => &REFERENCE_V0_7_0,
    };
    if !grammar.as_ref()?.is_match(reference) {
        return None;
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (reference, None),
    };
    let (name, tag) = match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (name_and_tag, None),
    };
    // v0.7.0 limits the whole name to 255 characters, head only the repository path (the name without its domain).
    if name.len() > REPOSITORY_NAME_TOTAL_LENGTH_MAX && algorithm == HashAlgorithm::V0_7_0 {
        return None;
    }
    if name.len() > REPOSITORY_NAME_TOTAL_LENGTH_MAX {
        let path = match ANCHORED_NAME.as_ref()?.captures(name) {
            Some(name_caps) => name_caps.get(2).map_or(name, |m| m.as_str()),
            None => name,
        };
        if path.len() > REPOSITORY_NAME_TOTAL_LENGTH_MAX {
            return None;
        }
    }
    Some((tag.filter(|t| !t.is_empty()), digest.filter(|d| !d.is_empty())))
}

/// go-digest's `Digest.Validate`, with sha256, sha384 and sha512 available (the operator binary links them all);
/// any other algorithm is unsupported, which fails the parse.
fn validate_digest(digest: &str) -> Option<()> {
    let (algorithm, encoded) = digest.split_once(':')?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return None,
    };
    (encoded.len() == length && encoded.bytes().all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const BOTH: [HashAlgorithm; 2] = HashAlgorithm::ALL;

    #[test]
    fn tags_of_valid_references() {
        for (image, expected) in [
            ("kfp-quickstart:v1", "v1"),
            ("alpine", "latest"),
            ("library/ubuntu", "latest"),
            ("ghcr.io/org/pipeline", "latest"),
            ("localhost:5000/org/pipeline:1.2.3", "1.2.3"),
            ("localhost/pipeline:x", "x"),
            ("index.docker.io/org/p:t", "t"),
            (
                "registry.example.com:5000/team/pipeline:2024.01-rc.1",
                "2024.01-rc.1",
            ),
            ("a_b.c/foo:v", "v"),
            ("localhost:5000", "5000"),
        ] {
            for algorithm in BOTH {
                assert_eq!(tag(image, algorithm), Some(expected), "{image} {algorithm}");
            }
        }
        for algorithm in BOTH {
            assert_eq!(
                tag(&format!("gcr.io/p/pipeline:v2@sha256:{SHA}"), algorithm),
                Some("v2")
            );
        }
    }

    #[test]
    fn digest_only_and_invalid_references_have_no_tag() {
        for image in [
            format!("gcr.io/p/pipeline@sha256:{SHA}"),
            format!("repo:v1@sha256:{}", &SHA[..32]),
            format!("repo:v1@sha256:{}", SHA.to_uppercase()),
            format!("repo:v1@md5:{SHA}"),
            SHA.to_string(),
            "".to_string(),
            "Not A Valid Image!".to_string(),
            "MyRepo:tag".to_string(),
            "repo:".to_string(),
            "repo:-bad".to_string(),
            "héllo".to_string(),
            format!("repo:{}", "t".repeat(129)),
            format!("example.com/{}", "a".repeat(256)),
        ] {
            for algorithm in BOTH {
                assert_eq!(tag(&image, algorithm), None, "{image} {algorithm}");
            }
        }
    }

    #[test]
    fn the_v0_7_0_library_has_no_ipv6_no_upper_case_registry_and_counts_the_registry_in_the_length() {
        let long_path = format!("example.com/{}:t", "a".repeat(250));
        for (image, head, v0_7_0) in [
            ("[::1]:5000/repo:v", Some("v"), None),
            ("MyRegistry/repo:Tag_1", Some("Tag_1"), None),
            (long_path.as_str(), Some("t"), None),
        ] {
            assert_eq!(tag(image, HashAlgorithm::Head), head, "{image}");
            assert_eq!(tag(image, HashAlgorithm::V0_7_0), v0_7_0, "{image}");
        }
    }
}
