//! Key pair actions through `api::router` (oneshot, temporary store), with fingerprints checked against `ssh-keygen`/`openssl` and hand-built DER.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::api::{Harness, Node, Reply};
use ec2d::api::key_pairs::public_key_for;
use sha1::Digest as _;

// ---------------------------------------------------------------------------------------------
// Harness: the shared one (`tests/common/api.rs`) in mock mode, plus key pair helpers.

impl Harness {
    async fn create(&self, name: &str, key_type: Option<&str>) -> Node {
        let mut params = vec![("Action", "CreateKeyPair"), ("KeyName", name)];
        if let Some(t) = key_type {
            params.push(("KeyType", t));
        }
        self.post(&params).await.ok("CreateKeyPair")
    }

    async fn import(&self, name: &str, material: &str) -> Reply {
        self.post(&[
            ("Action", "ImportKeyPair"),
            ("KeyName", name),
            ("PublicKeyMaterial", material),
        ])
        .await
    }

    /// DescribeKeyPairs with IncludePublicKey, returning the items.
    async fn describe(&self, extra: &[(&str, &str)]) -> Vec<Node> {
        self.describe_in("us-east-1", extra).await
    }

    async fn describe_in(&self, region: &str, extra: &[(&str, &str)]) -> Vec<Node> {
        let mut params = vec![("Action", "DescribeKeyPairs")];
        params.extend_from_slice(extra);
        let doc = self.post_in(region, &params).await.ok("DescribeKeyPairs");
        doc.child("keySet").children.clone()
    }

    async fn described_names(&self, extra: &[(&str, &str)]) -> Vec<String> {
        self.describe(extra)
            .await
            .iter()
            .map(|i| i.child("keyName").text.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Independent fingerprint computations: external tools when present, hand-built DER always.

/// Whether `tool` is on the PATH.
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a shell pipeline in `dir` and returns its trimmed stdout; panics on failure.
fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `openssl dgst -c` prints `SHA1(stdin)= aa:bb:…`; the digest is after `= `.
fn openssl_digest(output: &str) -> String {
    output
        .rsplit("= ")
        .next()
        .expect("digest output")
        .trim()
        .to_string()
}

fn write_private(dir: &Path, name: &str, pem: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    // ssh-keygen refuses private keys others can read.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
fn rsa_algorithm_identifier() -> Vec<u8> {
    let oid = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
    );
    der(0x30, &[oid, vec![0x05, 0x00]].concat())
}

/// The PEM body of a PKCS#1 key, decoded: the RSAPrivateKey DER.
fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD.decode(b64).unwrap()
}

/// SHA-1 of `PrivateKeyInfo { 0, rsaEncryption, OCTET STRING <pkcs1> }`, built by hand.
fn created_rsa_fingerprint_by_hand(pkcs1_pem: &str) -> String {
    let pkcs8 = der(
        0x30,
        &[
            der(0x02, &[0x00]),
            rsa_algorithm_identifier(),
            der(0x04, &pem_body(pkcs1_pem)),
        ]
        .concat(),
    );
    colon_hex(&sha1::Sha1::digest(pkcs8))
}

/// Splits an SSH wire blob into its length-prefixed strings.
fn ssh_strings(mut blob: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while blob.len() >= 4 {
        let len = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
        out.push(blob[4..4 + len].to_vec());
        blob = &blob[4 + len..];
    }
    out
}

/// MD5 of `SubjectPublicKeyInfo { rsaEncryption, BIT STRING RSAPublicKey { n, e } }`, from an
/// `ssh-rsa` line, built by hand (SSH mpints are already DER-style two's complement integers).
fn imported_rsa_fingerprint_by_hand(line: &str) -> String {
    let blob = STANDARD.decode(line.split(' ').nth(1).unwrap()).unwrap();
    let parts = ssh_strings(&blob);
    assert_eq!(parts[0], b"ssh-rsa");
    let (e, n) = (&parts[1], &parts[2]);
    let rsa_public_key = der(0x30, &[der(0x02, n), der(0x02, e)].concat());
    let spki = der(
        0x30,
        &[
            rsa_algorithm_identifier(),
            der(0x03, &[&[0u8][..], &rsa_public_key].concat()),
        ]
        .concat(),
    );
    colon_hex(&md5::Md5::digest(spki))
}

/// Base64 (padded) SHA-256 of the blob of an OpenSSH line.
fn ed25519_fingerprint_by_hand(line: &str) -> String {
    let blob = STANDARD.decode(line.split(' ').nth(1).unwrap()).unwrap();
    STANDARD.encode(sha2::Sha256::digest(blob))
}

/// `ssh-keygen -l -E sha256` prints `256 SHA256:<unpadded b64> comment (ED25519)`; AWS's form
/// is the same digest, padded and without the prefix.
fn ssh_keygen_sha256(dir: &Path, file: &str) -> String {
    let out = sh(dir, &format!("ssh-keygen -l -E sha256 -f {file}"));
    let b64 = out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .strip_prefix("SHA256:")
        .unwrap();
    let pad = (4 - b64.len() % 4) % 4;
    format!("{b64}{}", "=".repeat(pad))
}

// ---------------------------------------------------------------------------------------------
// CreateKeyPair

#[tokio::test]
async fn create_rsa_returns_a_pkcs1_key_matching_the_stored_public_key() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    let h = Harness::new();
    let doc = h.create("deploy", None).await;
    assert_eq!(
        doc.names(),
        vec![
            "requestId",
            "keyName",
            "keyFingerprint",
            "keyMaterial",
            "keyPairId"
        ]
    );
    assert_eq!(doc.text("keyName"), "deploy");
    let id = doc.text("keyPairId");
    assert!(
        id.len() == 21 && id.starts_with("key-") && id[4..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let pem = doc.text("keyMaterial");
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{pem}"
    );
    assert!(pem.trim_end().ends_with("-----END RSA PRIVATE KEY-----"));
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).expect("PKCS#1 PEM");
    assert_eq!(key.n().bits(), 2048);

    // The stored public key is the private key's public half.
    let items = h
        .describe(&[("KeyName.1", "deploy"), ("IncludePublicKey", "true")])
        .await;
    let public = items[0].text("publicKey").to_string();
    let derived = ssh_key::public::RsaPublicKey::try_from(key.to_public_key()).unwrap();
    let derived = ssh_key::PublicKey::new(ssh_key::public::KeyData::Rsa(derived), "deploy");
    assert_eq!(public, derived.to_openssh().unwrap());
    assert_eq!(
        public_key_for(&h.store.spec_view(), "us-east-1", "deploy").unwrap(),
        public
    );
    assert_eq!(items[0].text("keyType"), "rsa");

    // AWS's created-RSA fingerprint: SHA-1 of the PKCS#8 DER private key.
    let fingerprint = doc.text("keyFingerprint");
    assert_eq!(fingerprint, created_rsa_fingerprint_by_hand(pem));
    assert_eq!(items[0].text("keyFingerprint"), fingerprint);
    if have("openssl") && have("ssh-keygen") {
        let dir = tempfile::tempdir().unwrap();
        write_private(dir.path(), "k.pem", pem);
        let by_openssl = openssl_digest(&sh(
            dir.path(),
            "openssl pkcs8 -in k.pem -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c",
        ));
        assert_eq!(fingerprint, by_openssl);
        // OpenSSH itself reads the key and derives the same public key.
        let by_ssh_keygen = sh(dir.path(), "ssh-keygen -y -f k.pem");
        assert_eq!(
            by_ssh_keygen.split(' ').nth(1),
            public.split(' ').nth(1),
            "ssh-keygen derives the stored public key"
        );
    } else {
        eprintln!(
            "openssl/ssh-keygen missing: created-RSA fingerprint checked by hand-built DER only"
        );
    }
}

#[tokio::test]
async fn create_ed25519_returns_an_openssh_key_matching_the_stored_public_key() {
    let h = Harness::new();
    let doc = h.create("laptop", Some("ed25519")).await;
    let pem = doc.text("keyMaterial");
    assert!(
        pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        "{pem}"
    );
    let key = ssh_key::PrivateKey::from_openssh(pem).expect("OpenSSH private key");
    assert_eq!(key.algorithm(), ssh_key::Algorithm::Ed25519);
    assert!(!key.is_encrypted(), "EC2 key material is unencrypted");

    let items = h
        .describe(&[("KeyName.1", "laptop"), ("IncludePublicKey", "true")])
        .await;
    let public = items[0].text("publicKey").to_string();
    assert_eq!(
        public,
        format!(
            "ssh-ed25519 {} laptop",
            STANDARD.encode(key.public_key().to_bytes().unwrap())
        )
    );
    assert_eq!(items[0].text("keyType"), "ed25519");

    let fingerprint = doc.text("keyFingerprint");
    assert_eq!(fingerprint, ed25519_fingerprint_by_hand(&public));
    assert_eq!(fingerprint.len(), 44, "padded base64 of 32 bytes");
    assert!(!fingerprint.starts_with("SHA256:"));
    if have("ssh-keygen") {
        let dir = tempfile::tempdir().unwrap();
        write_private(dir.path(), "k", pem);
        assert_eq!(fingerprint, ssh_keygen_sha256(dir.path(), "k"));
        let derived = sh(dir.path(), "ssh-keygen -y -f k");
        assert_eq!(derived.split(' ').nth(1), public.split(' ').nth(1));
    } else {
        eprintln!("ssh-keygen missing: ED25519 fingerprint checked by hand only");
    }
}

#[tokio::test]
async fn private_keys_are_never_stored() {
    let h = Harness::new();
    let rsa = h.create("a", None).await;
    let ed = h.create("b", Some("ed25519")).await;
    let stored = serde_json::to_string(&h.store.key_pairs().list().unwrap().objects).unwrap();
    assert!(!stored.contains("PRIVATE"), "{stored}");
    for doc in [&rsa, &ed] {
        // A line from the middle of the PEM body: present in the store only if the key were.
        let pem = doc.text("keyMaterial");
        let line = pem.lines().nth(3).unwrap();
        assert!(line.len() >= 60, "{line}");
        assert!(!stored.contains(line));
    }
    // Describe never shows key material either.
    let described = h
        .post(&[("Action", "DescribeKeyPairs"), ("IncludePublicKey", "true")])
        .await;
    assert!(!described.body.contains("keyMaterial"));
    assert!(!described.body.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn create_errors() {
    let h = Harness::new();
    let e = h.post(&[("Action", "CreateKeyPair")]).await;
    assert_eq!(
        e.err("MissingParameter"),
        "The request must contain the parameter KeyName"
    );
    let e = h
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "k"),
            ("KeyType", "dsa"),
        ])
        .await;
    e.err("InvalidParameterValue");
    let e = h
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "k"),
            ("KeyFormat", "ppk"),
        ])
        .await;
    assert!(e.err("InvalidParameterValue").contains("not supported"));
    let long = "k".repeat(256);
    let e = h
        .post(&[("Action", "CreateKeyPair"), ("KeyName", long.as_str())])
        .await;
    e.err("InvalidParameterValue");
    let e = h
        .post(&[("Action", "CreateKeyPair"), ("KeyName", "clé")])
        .await;
    e.err("InvalidParameterValue");
    let ok = "k".repeat(255);
    h.create(&ok, Some("ed25519")).await;
    assert_eq!(h.store.key_pairs().len(), 1, "only the valid request wrote");
}

#[tokio::test]
async fn dry_run_validates_then_writes_nothing() {
    let h = Harness::new();
    let e = h
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "k"),
            ("DryRun", "true"),
        ])
        .await;
    e.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    let line = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let e = h
        .post(&[
            ("Action", "ImportKeyPair"),
            ("KeyName", "k"),
            ("PublicKeyMaterial", &STANDARD.encode(&line)),
            ("DryRun", "true"),
        ])
        .await;
    e.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert!(h.store.key_pairs().is_empty());

    h.create("k", Some("ed25519")).await;
    let e = h
        .post(&[
            ("Action", "DeleteKeyPair"),
            ("KeyName", "k"),
            ("DryRun", "true"),
        ])
        .await;
    e.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert_eq!(h.store.key_pairs().len(), 1);
    // Validation comes first: a dry run on an unknown id reports the id.
    let e = h
        .post(&[
            ("Action", "DeleteKeyPair"),
            ("KeyPairId", "key-00000000000000000"),
            ("DryRun", "true"),
        ])
        .await;
    e.err("InvalidKeyPair.NotFound");
}

// ---------------------------------------------------------------------------------------------
// ImportKeyPair

#[tokio::test]
async fn import_rsa_fingerprint_is_md5_of_the_spki() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let line = if have("ssh-keygen") {
        // ssh-keygen's own key, in its default (3072-bit) size: what users really upload.
        sh(
            dir.path(),
            "ssh-keygen -q -t rsa -N '' -C me@host -f id_rsa && cat id_rsa.pub",
        )
    } else {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        write_private(dir.path(), "id_rsa", &pem);
        let public = ssh_key::public::RsaPublicKey::try_from(key.to_public_key()).unwrap();
        ssh_key::PublicKey::new(ssh_key::public::KeyData::Rsa(public), "me@host")
            .to_openssh()
            .unwrap()
    };
    let reply = h
        .import("mine", &STANDARD.encode(format!("{line}\n")))
        .await;
    let doc = reply.ok("ImportKeyPair");
    assert_eq!(
        doc.names(),
        vec!["requestId", "keyName", "keyFingerprint", "keyPairId"],
        "no key material for imports"
    );
    let fingerprint = doc.text("keyFingerprint");
    assert_eq!(fingerprint.len(), 16 * 3 - 1, "MD5, colon-separated");
    assert_eq!(fingerprint, imported_rsa_fingerprint_by_hand(&line));
    if have("ssh-keygen") && have("openssl") {
        // AWS's documented recipe for imported keys.
        let by_tools = openssl_digest(&sh(
            dir.path(),
            "ssh-keygen -e -m PEM -f id_rsa.pub | openssl rsa -RSAPublicKey_in -outform DER 2>/dev/null | openssl md5 -c",
        ));
        assert_eq!(fingerprint, by_tools);
        // ssh-keygen's MD5 is of the SSH blob, not the SPKI: AWS differs, and so must we.
        let ssh_md5 = sh(dir.path(), "ssh-keygen -l -E md5 -f id_rsa.pub");
        assert!(!ssh_md5.contains(fingerprint));
    } else {
        eprintln!(
            "ssh-keygen/openssl missing: imported-RSA fingerprint checked by hand-built DER only"
        );
    }
    let items = h
        .describe(&[("KeyName.1", "mine"), ("IncludePublicKey", "true")])
        .await;
    assert_eq!(items[0].text("keyType"), "rsa");
    assert_eq!(
        items[0].text("publicKey"),
        format!("ssh-rsa {} mine", line.split(' ').nth(1).unwrap()),
        "stored with the key name as comment"
    );
}

#[tokio::test]
async fn import_ed25519_wrapped_raw_and_rfc4716_agree() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let (line, rfc4716) = if have("ssh-keygen") {
        let line = sh(
            dir.path(),
            "ssh-keygen -q -t ed25519 -N '' -C me@host -f id && cat id.pub",
        );
        (line, Some(sh(dir.path(), "ssh-keygen -e -f id.pub")))
    } else {
        let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
        (key.public_key().to_openssh().unwrap(), None)
    };
    let wrapped = h
        .import("wrapped", &STANDARD.encode(&line))
        .await
        .ok("ImportKeyPair");
    let raw = h.import("raw", &line).await.ok("ImportKeyPair");
    let fingerprint = wrapped.text("keyFingerprint").to_string();
    assert_eq!(raw.text("keyFingerprint"), fingerprint);
    assert_eq!(fingerprint, ed25519_fingerprint_by_hand(&line));
    if have("ssh-keygen") {
        assert_eq!(fingerprint, ssh_keygen_sha256(dir.path(), "id.pub"));
    }
    if let Some(block) = rfc4716 {
        assert!(block.starts_with("---- BEGIN SSH2 PUBLIC KEY ----"));
        let doc = h
            .import("rfc4716", &STANDARD.encode(&block))
            .await
            .ok("ImportKeyPair");
        assert_eq!(doc.text("keyFingerprint"), fingerprint);
    }
    let types: Vec<String> = h
        .describe(&[])
        .await
        .iter()
        .map(|i| i.text("keyType").to_string())
        .collect();
    assert!(types.iter().all(|t| t == "ed25519"), "{types:?}");
}

#[tokio::test]
async fn import_refuses_what_is_not_an_rsa_or_ed25519_public_key() {
    let h = Harness::new();
    // ssh-keygen -t ecdsa: a valid OpenSSH key, but EC2 imports only RSA and ED25519.
    let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAztEaTtlhkAvOLY+4oPeTkFOiG3n9/kioJ6rdtnsH9PpPqsa8WcHGS18sFs/E8zIBl+CHp7sDWBa7khcdO8RXs= x";
    let private = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap()
        .to_string();
    for material in [
        STANDARD.encode("not a key"),
        "not a key".to_string(),
        STANDARD.encode(ecdsa),
        ecdsa.to_string(),
        STANDARD.encode(&private),
        "ssh-rsa AAAAB3NzaC1yc2E= truncated".to_string(),
    ] {
        let e = h.import("k", &material).await;
        assert_eq!(
            e.err("InvalidKey.Format"),
            "Key is not in valid OpenSSH public key format",
            "{material}"
        );
    }
    let e = h
        .post(&[("Action", "ImportKeyPair"), ("KeyName", "k")])
        .await;
    assert_eq!(
        e.err("MissingParameter"),
        "The request must contain the parameter PublicKeyMaterial"
    );
    assert!(h.store.key_pairs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// ImportKeyPair's formats: one 2048-bit RSA key (made once with `ssh-keygen -t rsa -b 2048`) in
// each format AWS documents, converted with `ssh-keygen -e -m RFC4716|PKCS8|PEM` and
// `openssl pkey -pubin -outform DER`; its fingerprint is `openssl md5 -c` of that DER.

/// `id_rsa.pub`.
const RSA_OPENSSH: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDbckzN6bEirEqb96qxeJczV+T5EGyRJL76t8JHDJKfsyxt+D/a0BQ4zACfAFWtSBei79Bluxts+UPeEk/BEwJ2FApFxCsc0fTr7TSt/CNGR9VowTEXZZMB9V0V+eXjL/PgjIUEqYJlYXNC6g9+TIFe101IZ+oH5JazdvHE2BZjGRRqNmr9v/rsPsITw+uP0VDrnAAJpf6K0Ujje/NngKVb2uwSD+QNnHn6zdddK0bvNwK2v4/RIdWJaLXmPdFpseUL7uGwrJoyETvx89bKL1GBz7utQL3+9VEG/hCizXH5/mHO/AX4W/eYDaacuD/blbtHjXj2k9egXI5XT/uhDVeP vec@ec2d";
/// `ssh-keygen -e -m RFC4716`.
const RSA_RFC4716: &str = "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"2048-bit RSA, converted by root@vm from OpenSSH\"\nAAAAB3NzaC1yc2EAAAADAQABAAABAQDbckzN6bEirEqb96qxeJczV+T5EGyRJL76t8JHDJ\nKfsyxt+D/a0BQ4zACfAFWtSBei79Bluxts+UPeEk/BEwJ2FApFxCsc0fTr7TSt/CNGR9Vo\nwTEXZZMB9V0V+eXjL/PgjIUEqYJlYXNC6g9+TIFe101IZ+oH5JazdvHE2BZjGRRqNmr9v/\nrsPsITw+uP0VDrnAAJpf6K0Ujje/NngKVb2uwSD+QNnHn6zdddK0bvNwK2v4/RIdWJaLXm\nPdFpseUL7uGwrJoyETvx89bKL1GBz7utQL3+9VEG/hCizXH5/mHO/AX4W/eYDaacuD/blb\ntHjXj2k9egXI5XT/uhDVeP\n---- END SSH2 PUBLIC KEY ----\n";
/// `ssh-keygen -e -m PKCS8`: a PEM SubjectPublicKeyInfo.
const RSA_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA23JMzemxIqxKm/eqsXiX\nM1fk+RBskSS++rfCRwySn7Msbfg/2tAUOMwAnwBVrUgXou/QZbsbbPlD3hJPwRMC\ndhQKRcQrHNH06+00rfwjRkfVaMExF2WTAfVdFfnl4y/z4IyFBKmCZWFzQuoPfkyB\nXtdNSGfqB+SWs3bxxNgWYxkUajZq/b/67D7CE8Prj9FQ65wACaX+itFI43vzZ4Cl\nW9rsEg/kDZx5+s3XXStG7zcCtr+P0SHViWi15j3RabHlC+7hsKyaMhE78fPWyi9R\ngc+7rUC9/vVRBv4Qos1x+f5hzvwF+Fv3mA2mnLg/25W7R4149pPXoFyOV0/7oQ1X\njwIDAQAB\n-----END PUBLIC KEY-----\n";
/// `ssh-keygen -e -m PEM`: a PEM PKCS#1 RSAPublicKey.
const RSA_PKCS1_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA23JMzemxIqxKm/eqsXiXM1fk+RBskSS++rfCRwySn7Msbfg/2tAU\nOMwAnwBVrUgXou/QZbsbbPlD3hJPwRMCdhQKRcQrHNH06+00rfwjRkfVaMExF2WT\nAfVdFfnl4y/z4IyFBKmCZWFzQuoPfkyBXtdNSGfqB+SWs3bxxNgWYxkUajZq/b/6\n7D7CE8Prj9FQ65wACaX+itFI43vzZ4ClW9rsEg/kDZx5+s3XXStG7zcCtr+P0SHV\niWi15j3RabHlC+7hsKyaMhE78fPWyi9Rgc+7rUC9/vVRBv4Qos1x+f5hzvwF+Fv3\nmA2mnLg/25W7R4149pPXoFyOV0/7oQ1XjwIDAQAB\n-----END RSA PUBLIC KEY-----\n";
/// The SubjectPublicKeyInfo's DER, base64 (what `fileb://key.der` sends).
const RSA_DER_BASE64: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA23JMzemxIqxKm/eqsXiXM1fk+RBskSS++rfCRwySn7Msbfg/2tAUOMwAnwBVrUgXou/QZbsbbPlD3hJPwRMCdhQKRcQrHNH06+00rfwjRkfVaMExF2WTAfVdFfnl4y/z4IyFBKmCZWFzQuoPfkyBXtdNSGfqB+SWs3bxxNgWYxkUajZq/b/67D7CE8Prj9FQ65wACaX+itFI43vzZ4ClW9rsEg/kDZx5+s3XXStG7zcCtr+P0SHViWi15j3RabHlC+7hsKyaMhE78fPWyi9Rgc+7rUC9/vVRBv4Qos1x+f5hzvwF+Fv3mA2mnLg/25W7R4149pPXoFyOV0/7oQ1XjwIDAQAB";
/// `openssl md5 -c` of the DER: AWS's fingerprint of an imported RSA key.
const RSA_FINGERPRINT: &str = "5d:8c:ee:30:64:94:88:07:aa:7a:52:70:f9:14:74:72";
/// A 1024-bit RSA key (`ssh-keygen -e -m PKCS8`): under EC2's 2048 bits.
const RSA_1024_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCz0DwjtNj+JUFmuJ02rfX/CPQM\nH7yqnGJCz/5Y/52Erlox1YRznv4T0nkoWLHWMqCej37kBrpDXZQVErmRjKJpbCKG\no4tA2I2xS081gGKDSUeBUQQa5ZmcE2BsP7E1UzxsISbdwH+tSs613Qe8BXGeydxr\nvPrcahl+RaEilOSDJQIDAQAB\n-----END PUBLIC KEY-----\n";
/// A P-256 key (`openssl ec -pubout`): EC2 imports only RSA and ED25519.
const EC_SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPV4ut0kIgcaQpQiWCT5Q3rrQWxJC\nr5SiBuNnrpQmfSHbnxBBTfbxB2P+s6LKsArXN/zCdedPOUdxkhYRMei/hw==\n-----END PUBLIC KEY-----\n";
/// `ssh-keygen -t dsa`.
const DSA_OPENSSH: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBAMj9c/+8jdU3nrtjKNKhr+/0tOPtHfxb4YsXWJwech81ZLl6/ncWsX3VgnbgqnRo3d5VZW8fXbzQmi8PYYBlkSQl9urSRMDFRAaMnnDCZpVnxPyOh3Fk/gpQUlO003Acuf2unhgTnwNIsJ1YzRXQMmshyLvz2K6y8vScHsGIW6/XAAAAFQDMhSmpeQmoHJhEcJds13AtF39WGwAAAIEAx4WbdPrOlxwNkC8VY2Ol8rkyMtzt3er6w7RrSPJ241XjTF15Hd/aqqme2NxjqX4uGJyDq6vXyIEuUXY82RW+LOMnoPKLivhFU68qigbbFsK5jGWbNEcD/JFPakHlXFg60iVZ+bSwTTAZ5MDZKqM6qm9uqu4PfqqvxtcbLZdthzEAAACAU1w/c8wAt+yeJHMlxla4mU5B8zNHrz2YDYHeZLqstupBnbY+1FMrDghq4wYArB8BxcpJxHjHLMykBEtPXi6K/k5ze3OjcDiiOiUxpSk1/Pih17QFcPoiXqkBpX6nI63SBXhBKkv1g+qCo82B7zjqAq0tpmCExp2QZo0kVdgiR90= root@vm";

#[tokio::test]
async fn import_takes_every_format_aws_documents_for_one_rsa_key() {
    let h = Harness::new();
    let blob = RSA_OPENSSH.split(' ').nth(1).unwrap();
    let formats = [
        ("openssh", STANDARD.encode(format!("{RSA_OPENSSH}\n"))),
        ("rfc4716", STANDARD.encode(RSA_RFC4716)),
        ("spki-pem", STANDARD.encode(RSA_SPKI_PEM)),
        ("pkcs1-pem", STANDARD.encode(RSA_PKCS1_PEM)),
        ("der", RSA_DER_BASE64.to_string()),
        // The PEM text itself, as hand-made requests and CLI v1's `file://` send it.
        ("raw-pem", RSA_SPKI_PEM.to_string()),
    ];
    for (name, material) in &formats {
        let doc = h.import(name, material).await.ok("ImportKeyPair");
        assert_eq!(doc.text("keyFingerprint"), RSA_FINGERPRINT, "{name}");
    }
    assert_eq!(
        RSA_FINGERPRINT,
        imported_rsa_fingerprint_by_hand(RSA_OPENSSH),
        "the vector's fingerprint"
    );
    // Whatever the format, DescribeKeyPairs shows the OpenSSH line, named after the key pair.
    for item in h.describe(&[("IncludePublicKey", "true")]).await {
        let name = item.text("keyName");
        assert_eq!(item.text("keyType"), "rsa");
        assert_eq!(item.text("publicKey"), format!("ssh-rsa {blob} {name}"));
    }
}

#[tokio::test]
async fn import_refuses_short_rsa_dsa_and_ecdsa_in_any_format() {
    let h = Harness::new();
    let ec_der = {
        let body: String = EC_SPKI_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        body
    };
    for material in [
        STANDARD.encode(RSA_1024_SPKI_PEM),
        STANDARD.encode(EC_SPKI_PEM),
        ec_der,
        STANDARD.encode(DSA_OPENSSH),
        STANDARD.encode(RSA_SPKI_PEM.replace("MIIBIjAN", "MIIBIjAA")),
    ] {
        let e = h.import("k", &material).await;
        assert_eq!(
            e.err("InvalidKey.Format"),
            "Key is not in valid OpenSSH public key format",
            "{material}"
        );
    }
    assert!(h.store.key_pairs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Names, ids, regions

#[tokio::test]
async fn names_are_unique_per_region() {
    let h = Harness::new();
    h.create("dup", Some("ed25519")).await;
    let e = h
        .post(&[("Action", "CreateKeyPair"), ("KeyName", "dup")])
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.Duplicate"),
        "The keypair 'dup' already exists."
    );
    let line = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let e = h.import("dup", &STANDARD.encode(&line)).await;
    e.err("InvalidKeyPair.Duplicate");
    // The same name in another region is another key pair.
    h.post_in(
        "eu-west-1",
        &[
            ("Action", "ImportKeyPair"),
            ("KeyName", "dup"),
            ("PublicKeyMaterial", &STANDARD.encode(&line)),
        ],
    )
    .await
    .ok("ImportKeyPair");
    assert_eq!(h.store.key_pairs().len(), 2);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_one_key_pair() {
    let h = Arc::new(Harness::new());
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.post(&[
                    ("Action", "CreateKeyPair"),
                    ("KeyName", "race"),
                    ("KeyType", "ed25519"),
                ])
                .await
                .status
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(h.store.key_pairs().len(), 1);
}

#[tokio::test]
async fn resources_are_scoped_per_region() {
    let h = Harness::new();
    let doc = h.create("east", Some("ed25519")).await;
    let id = doc.text("keyPairId").to_string();
    assert!(h.describe_in("eu-west-1", &[]).await.is_empty());
    let e = h
        .post_in(
            "eu-west-1",
            &[("Action", "DescribeKeyPairs"), ("KeyPairId.1", &id)],
        )
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.NotFound"),
        format!("The key pair '{id}' does not exist")
    );
    let e = h
        .post_in(
            "eu-west-1",
            &[("Action", "DeleteKeyPair"), ("KeyPairId", &id)],
        )
        .await;
    e.err("InvalidKeyPair.NotFound");
    // Deleting by name in the other region is the idempotent no-op, not a delete here.
    h.post_in(
        "eu-west-1",
        &[("Action", "DeleteKeyPair"), ("KeyName", "east")],
    )
    .await
    .ok("DeleteKeyPair");
    assert_eq!(h.described_names(&[]).await, vec!["east"]);
    assert!(public_key_for(&h.store.spec_view(), "us-east-1", "east").is_ok());
    let e = public_key_for(&h.store.spec_view(), "eu-west-1", "east").unwrap_err();
    assert_eq!(e.code, "InvalidKeyPair.NotFound");
    assert_eq!(e.message, "The key pair 'east' does not exist");
}

// ---------------------------------------------------------------------------------------------
// DescribeKeyPairs

#[tokio::test]
async fn describe_renders_what_boto3_expects() {
    let h = Harness::new();
    // A key pair's TagSpecification may only name `key-pair`.
    h.refuses_tag_type(
        &[("Action", "CreateKeyPair"), ("KeyName", "tagged")],
        "instance",
    )
    .await;
    h.post(&[
        ("Action", "CreateKeyPair"),
        ("KeyName", "tagged"),
        ("KeyType", "ed25519"),
        ("TagSpecification.1.ResourceType", "key-pair"),
        ("TagSpecification.1.Tag.1.Key", "team"),
        ("TagSpecification.1.Tag.1.Value", "platform"),
    ])
    .await
    .ok("CreateKeyPair");
    let items = h.describe(&[]).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.name, "item");
    assert_eq!(
        item.names(),
        vec![
            "keyPairId",
            "keyType",
            "tagSet",
            "keyName",
            "keyFingerprint",
            "createTime"
        ],
        "no publicKey unless asked for"
    );
    assert_eq!(
        item.tags(),
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );
    let created = item.text("createTime");
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok()
            && created.ends_with('Z')
            && created.len() == "2024-01-01T00:00:00.000Z".len(),
        "{created}"
    );
    let with_key = h.describe(&[("IncludePublicKey", "true")]).await;
    assert!(with_key[0]
        .text("publicKey")
        .starts_with("ssh-ed25519 AAAA"));
    // The create response carried the tags too.
    let doc = h
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", "tagged2"),
            ("KeyType", "ed25519"),
            ("TagSpecification.1.ResourceType", "key-pair"),
            ("TagSpecification.1.Tag.1.Key", "a"),
            ("TagSpecification.1.Tag.1.Value", "b"),
        ])
        .await
        .ok("CreateKeyPair");
    assert_eq!(doc.names().last(), Some(&"tagSet"));
    assert_eq!(doc.tags()["a"], "b");
}

#[tokio::test]
async fn describe_by_name_id_and_filters() {
    async fn by(h: &Harness, name: &str, value: &str) -> Vec<String> {
        h.described_names(&[("Filter.1.Name", name), ("Filter.1.Value.1", value)])
            .await
    }

    let h = Harness::new();
    let web = h.create("web-1", Some("ed25519")).await;
    let db = h.create("db-1", None).await;
    h.post(&[
        ("Action", "CreateKeyPair"),
        ("KeyName", "web-2"),
        ("KeyType", "ed25519"),
        ("TagSpecification.1.ResourceType", "key-pair"),
        ("TagSpecification.1.Tag.1.Key", "env"),
        ("TagSpecification.1.Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateKeyPair");
    let web_id = web.text("keyPairId");
    let db_fp = db.text("keyFingerprint");

    assert_eq!(h.described_names(&[]).await, vec!["db-1", "web-1", "web-2"]);
    assert_eq!(
        h.described_names(&[("KeyName.1", "web-1"), ("KeyName.2", "db-1")])
            .await,
        vec!["db-1", "web-1"]
    );
    assert_eq!(
        h.described_names(&[("KeyPairId.1", web_id)]).await,
        vec!["web-1"]
    );
    assert_eq!(by(&h, "key-name", "web-*").await, vec!["web-1", "web-2"]);
    assert_eq!(by(&h, "key-type", "rsa").await, vec!["db-1"]);
    assert_eq!(by(&h, "tag:env", "prod").await, vec!["web-2"]);
    assert_eq!(by(&h, "tag-key", "env").await, vec!["web-2"]);
    assert!(by(&h, "tag:env", "dev").await.is_empty());
    assert_eq!(
        h.described_names(&[
            ("Filter.1.Name", "fingerprint"),
            ("Filter.1.Value.1", db_fp)
        ])
        .await,
        vec!["db-1"]
    );
    assert_eq!(
        h.described_names(&[
            ("Filter.1.Name", "key-pair-id"),
            ("Filter.1.Value.1", web_id)
        ])
        .await,
        vec!["web-1"]
    );
    // Names ANDed with filters; values ORed.
    assert_eq!(
        h.described_names(&[
            ("KeyName.1", "web-1"),
            ("Filter.1.Name", "key-type"),
            ("Filter.1.Value.1", "rsa"),
        ])
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        h.described_names(&[
            ("Filter.1.Name", "key-name"),
            ("Filter.1.Value.1", "db-1"),
            ("Filter.1.Value.2", "web-2"),
        ])
        .await,
        vec!["db-1", "web-2"]
    );

    let e = h
        .post(&[
            ("Action", "DescribeKeyPairs"),
            ("KeyName.1", "web-1"),
            ("KeyName.2", "nope"),
        ])
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.NotFound"),
        "The key pair 'nope' does not exist"
    );
    let e = h
        .post(&[
            ("Action", "DescribeKeyPairs"),
            ("KeyPairId.1", "key-0123456789abcdef0"),
        ])
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.NotFound"),
        "The key pair 'key-0123456789abcdef0' does not exist"
    );
    let e = h
        .post(&[("Action", "DescribeKeyPairs"), ("KeyPairId.1", "web-1")])
        .await;
    e.err("InvalidParameterValue");
    let e = h
        .post(&[
            ("Action", "DescribeKeyPairs"),
            ("Filter.1.Name", "owner-id"),
            ("Filter.1.Value.1", "x"),
        ])
        .await;
    assert_eq!(
        e.err("InvalidParameterValue"),
        "The filter 'owner-id' is invalid"
    );
}

#[tokio::test]
async fn hostile_names_and_tags_are_escaped() {
    let h = Harness::new();
    let name = "a<b>&'\"]]> c";
    let doc = h
        .post(&[
            ("Action", "CreateKeyPair"),
            ("KeyName", name),
            ("KeyType", "ed25519"),
            ("TagSpecification.1.ResourceType", "key-pair"),
            ("TagSpecification.1.Tag.1.Key", "<k>"),
            ("TagSpecification.1.Tag.1.Value", "</value><evil/>&amp;"),
        ])
        .await;
    assert!(doc.body.contains("a&lt;b&gt;&amp;"), "{}", doc.body);
    let doc = doc.ok("CreateKeyPair");
    assert_eq!(doc.text("keyName"), name);
    let items = h
        .describe(&[("KeyName.1", name), ("IncludePublicKey", "true")])
        .await;
    assert_eq!(items[0].text("keyName"), name);
    assert!(items[0].text("publicKey").ends_with(&format!(" {name}")));
    assert_eq!(items[0].tags()["<k>"], "</value><evil/>&amp;");
    let e = h
        .post(&[("Action", "DescribeKeyPairs"), ("KeyName.1", "<nope&>")])
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.NotFound"),
        "The key pair '<nope&>' does not exist"
    );
}

// ---------------------------------------------------------------------------------------------
// DeleteKeyPair

#[tokio::test]
async fn delete_by_name_is_idempotent_and_by_id_is_checked() {
    let h = Harness::new();
    let doc = h.create("gone", Some("ed25519")).await;
    let id = doc.text("keyPairId").to_string();

    let del = h
        .post(&[("Action", "DeleteKeyPair"), ("KeyName", "gone")])
        .await
        .ok("DeleteKeyPair");
    assert_eq!(del.names(), vec!["requestId", "return", "keyPairId"]);
    assert_eq!(del.text("return"), "true");
    assert_eq!(del.text("keyPairId"), id);
    assert!(h.store.key_pairs().is_empty());
    let e = h
        .post(&[("Action", "DescribeKeyPairs"), ("KeyName.1", "gone")])
        .await;
    e.err("InvalidKeyPair.NotFound");

    // Again: still success, nothing to name.
    let again = h
        .post(&[("Action", "DeleteKeyPair"), ("KeyName", "gone")])
        .await
        .ok("DeleteKeyPair");
    assert_eq!(again.names(), vec!["requestId", "return"]);
    assert_eq!(again.text("return"), "true");

    // By id: unknown is an error, known deletes.
    let e = h
        .post(&[("Action", "DeleteKeyPair"), ("KeyPairId", &id)])
        .await;
    assert_eq!(
        e.err("InvalidKeyPair.NotFound"),
        format!("The key pair '{id}' does not exist")
    );
    let doc = h.create("by-id", Some("ed25519")).await;
    let id = doc.text("keyPairId").to_string();
    let del = h
        .post(&[("Action", "DeleteKeyPair"), ("KeyPairId", &id)])
        .await
        .ok("DeleteKeyPair");
    assert_eq!(del.text("keyPairId"), id);
    assert!(h.store.key_pairs().is_empty());

    let e = h.post(&[("Action", "DeleteKeyPair")]).await;
    e.err("MissingParameter");
    let e = h
        .post(&[("Action", "DeleteKeyPair"), ("KeyPairId", "nope")])
        .await;
    e.err("InvalidParameterValue");

    // The name is free again after a delete.
    h.create("gone", Some("ed25519")).await;
}

// ---------------------------------------------------------------------------------------------
// Example objects (tests/schemas.rs only knows the kinds listed there)

#[test]
fn keypair_examples_round_trip_and_carry_consistent_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds-like-schemas/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(file.starts_with("keypair-") && file.ends_with(".json")) {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let object: ec2d::model::KeyPair =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(serde_json::to_value(&object).unwrap(), value, "{file}");
        assert_eq!(object.kind, ec2d::model::KEY_PAIR_KIND);
        assert!(object.metadata.name.starts_with("key-"), "{file}");
        let line = &object.spec.public_key;
        assert!(
            line.ends_with(&format!(" {}", object.spec.key_name)),
            "{file}"
        );
        match object.spec.key_type {
            ec2d::model::KeyType::Ed25519 => {
                assert_eq!(object.spec.fingerprint, ed25519_fingerprint_by_hand(line))
            }
            ec2d::model::KeyType::Rsa
                if object.spec.origin == ec2d::model::KeyPairOrigin::Imported =>
            {
                assert_eq!(
                    object.spec.fingerprint,
                    imported_rsa_fingerprint_by_hand(line)
                )
            }
            // A created RSA fingerprint hashes the private key, which is (rightly) not stored.
            ec2d::model::KeyType::Rsa => assert_eq!(object.spec.fingerprint.len(), 59),
        }
        checked += 1;
    }
    assert!(checked >= 2, "expected keypair examples, found {checked}");
}
