//! The AMI tag rule: a Docker image tagged `localstack-ec2/<AmiName>:<AmiId>` is an AMI.

use std::fmt;

use super::ids::ImageId;

/// The Docker repository prefix that turns an image into an AMI: `localstack-ec2/<AmiName>:<AmiId>`.
pub const AMI_REPOSITORY_PREFIX: &str = "localstack-ec2/";

/// Podman names local images `localhost/<repo>`; Docker does not.
const PODMAN_LOCAL_PREFIX: &str = "localhost/";

/// The tag that makes a Docker image an AMI: `localstack-ec2/<name>:<ami id>`.
///
/// [`AmiTag::parse`] reads one as the engine lists it and `Display` writes it, so both ends of
/// the rule live here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AmiTag {
    /// The AMI's name: the repository after `localstack-ec2/`. Never empty when parsed.
    pub name: String,
    /// The AMI id: the tag.
    pub ami_id: ImageId,
}

impl AmiTag {
    /// The tag of AMI `ami_id` named `name`.
    pub fn new(name: impl Into<String>, ami_id: ImageId) -> Self {
        Self {
            name: name.into(),
            ami_id,
        }
    }

    /// Reads an image's `repository:tag`. Podman's `localhost/` in front is accepted; any other
    /// repository, an empty name, or a tag that is not a well-formed AMI id is not an AMI.
    pub fn parse(repo_tag: &str) -> Option<Self> {
        let rest = repo_tag
            .strip_prefix(PODMAN_LOCAL_PREFIX)
            .unwrap_or(repo_tag);
        let rest = rest.strip_prefix(AMI_REPOSITORY_PREFIX)?;
        let (name, tag) = rest.rsplit_once(':')?;
        if name.is_empty() {
            return None;
        }
        Some(Self::new(name, ImageId::parse(tag).ok()?))
    }

    /// The repository half, `localstack-ec2/<name>`, as the engine's tag and commit calls take it.
    pub fn repository(&self) -> String {
        format!("{AMI_REPOSITORY_PREFIX}{}", self.name)
    }
}

impl fmt::Display for AmiTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{AMI_REPOSITORY_PREFIX}{}:{}", self.name, self.ami_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ami(s: &str) -> ImageId {
        ImageId::parse(s).unwrap()
    }

    #[test]
    fn parses_docker_tags() {
        assert_eq!(
            AmiTag::parse("localstack-ec2/ubuntu:ami-000001"),
            Some(AmiTag::new("ubuntu", ami("ami-000001")))
        );
        // The name may have slashes of its own; the tag is after the last colon.
        assert_eq!(
            AmiTag::parse("localstack-ec2/team/app:ami-00ff"),
            Some(AmiTag::new("team/app", ami("ami-00ff")))
        );
    }

    #[test]
    fn accepts_podmans_localhost_prefix() {
        assert_eq!(
            AmiTag::parse("localhost/localstack-ec2/ubuntu:ami-00ff"),
            Some(AmiTag::new("ubuntu", ami("ami-00ff")))
        );
        assert_eq!(AmiTag::parse("localhost/other/ubuntu:ami-00ff"), None);
    }

    #[test]
    fn rejects_an_empty_name() {
        assert_eq!(AmiTag::parse("localstack-ec2/:ami-000001"), None);
        assert_eq!(AmiTag::parse("localstack-ec2:ami-local"), None);
    }

    #[test]
    fn rejects_a_bad_ami_id() {
        assert_eq!(AmiTag::parse("localstack-ec2/ubuntu:latest"), None);
        assert_eq!(AmiTag::parse("localstack-ec2/ubuntu:ami-local"), None);
        assert_eq!(AmiTag::parse("localstack-ec2/ubuntu:ami-"), None);
    }

    #[test]
    fn rejects_no_tag_and_other_repositories() {
        assert_eq!(AmiTag::parse("localstack-ec2/ubuntu"), None);
        assert_eq!(AmiTag::parse("other/ubuntu:ami-000001"), None);
        assert_eq!(AmiTag::parse(""), None);
    }

    #[test]
    fn formats_what_it_parses() {
        let tag = AmiTag::new("my-snap-v2", ami("ami-0123456789abcdef0"));
        assert_eq!(
            tag.to_string(),
            "localstack-ec2/my-snap-v2:ami-0123456789abcdef0"
        );
        assert_eq!(tag.repository(), "localstack-ec2/my-snap-v2");
        assert_eq!(AmiTag::parse(&tag.to_string()), Some(tag));
    }
}
