//! `ec2d status`: the status endpoint as a terminal table, the way `kubectl get` prints one;
//! `ec2d healthcheck`: whether the API answers, for a container's HEALTHCHECK.

use serde_json::Value;

/// Asks the ec2d listening on `listen` (its loopback when it listens on every address) for
/// LocalStack's health document; `Ok` only for a 200 within five seconds.
pub async fn healthcheck(listen: std::net::SocketAddr) -> Result<(), String> {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/_localstack/health");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("cannot reach ec2d at {url}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", response.status()))
    }
}

/// Fetches `/_ec2d/status` from a running ec2d and renders it.
pub async fn status(base_url: &str, instance: Option<&str>) -> Result<String, String> {
    let url = match instance {
        Some(id) => format!("{base_url}/_ec2d/status/instances/{id}"),
        None => format!("{base_url}/_ec2d/status"),
    };
    let response = reqwest::get(&url)
        .await
        .map_err(|e| format!("cannot reach ec2d at {base_url}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(format!("instance {} not found", instance.unwrap_or("")));
    }
    let doc: Value = response
        .json()
        .await
        .map_err(|e| format!("ec2d answered something that is not a status document: {e}"))?;
    Ok(match instance {
        Some(_) => serde_json::to_string_pretty(&doc).unwrap_or_default(),
        None => render(&doc),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Lays rows out in left-aligned columns separated by three spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

/// Renders the whole status document: controller and default engine, every engine,
/// instances, images.
pub fn render(doc: &Value) -> String {
    let controller = &doc["controller"];
    let engine = &doc["engine"];
    let mut out = format!(
        "engine: {} (version {}, api {})   queue: {}   in flight: {}   reconciles: {} ({} errors)   last resync: {}\n\n",
        match engine["reachable"].as_bool() {
            Some(true) => "reachable",
            Some(false) => "UNREACHABLE",
            None => "unknown",
        },
        text(&engine["version"]),
        text(&engine["apiVersion"]),
        text(&controller["queue_depth"]),
        text(&controller["in_flight"]),
        text(&controller["reconciles_total"]),
        text(&controller["errors_total"]),
        text(&controller["last_resync_at"]),
    );
    let empty = Vec::new();
    // Every engine, when the server lists them (an older ec2d does not).
    if let Some(engines) = doc["engines"].as_array() {
        let rows: Vec<Vec<String>> = engines
            .iter()
            .map(|e| {
                let zones = e["zones"]
                    .as_array()
                    .map(|zones| zones.iter().map(text).collect::<Vec<_>>().join(","))
                    .filter(|zones| !zones.is_empty())
                    .unwrap_or_else(|| "-".to_string());
                vec![
                    text(&e["name"]),
                    zones,
                    if e["default"].as_bool() == Some(true) {
                        "yes".to_string()
                    } else {
                        "no".to_string()
                    },
                    match e["reachable"].as_bool() {
                        Some(true) => "reachable",
                        Some(false) => "UNREACHABLE",
                        None => "unknown",
                    }
                    .to_string(),
                    text(&e["version"]),
                    text(&e["apiVersion"]),
                    text(&e["checkedAt"]),
                    text(&e["lastError"]),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "ENGINE",
                "ZONES",
                "DEFAULT",
                "STATE",
                "VERSION",
                "API",
                "CHECKED",
                "LAST ERROR",
            ],
            &rows,
        ));
        out.push_str("\n\n");
    }
    let instances: Vec<Vec<String>> = doc["instances"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|i| {
            let container = &i["container"];
            let ports = container["ports"]
                .as_array()
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| format!("{}->{}", text(&p["hostPort"]), text(&p["containerPort"])))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".to_string());
            let short_id = container["id"]
                .as_str()
                .map(|id| id.chars().take(12).collect())
                .unwrap_or_else(|| "-".to_string());
            vec![
                text(&i["id"]),
                text(&i["region"]),
                text(&i["desired"]),
                text(&i["state"]),
                format!(
                    "{}/{}",
                    text(&i["observedGeneration"]),
                    text(&i["generation"])
                ),
                short_id,
                text(&container["state"]),
                text(&container["ipAddress"]),
                ports,
                text(&i["lastError"]["message"]),
            ]
        })
        .collect();
    let mut headers = vec![
        "INSTANCE",
        "REGION",
        "DESIRED",
        "STATE",
        "OBSERVED/GEN",
        "CONTAINER",
        "DOCKER",
        "IP",
        "PORTS",
        "LAST ERROR",
    ];
    // With several engines (`EC2D_ENGINES`), where each instance runs, and a copy under way.
    let listed = doc["instances"].as_array().unwrap_or(&empty);
    let mut instances = instances;
    if listed.iter().any(|i| !i["engine"].is_null()) {
        headers.insert(2, "ENGINE");
        for (row, i) in instances.iter_mut().zip(listed) {
            let engine = match &i["imageCopy"] {
                copy if copy.is_object() => format!(
                    "{} (copying image from {}: {} bytes)",
                    text(&i["engine"]),
                    text(&copy["from"]),
                    text(&copy["bytesCopied"])
                ),
                _ => text(&i["engine"]),
            };
            row.insert(2, engine);
        }
    }
    out.push_str(&table(&headers, &instances));
    let images: Vec<Vec<String>> = doc["images"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|i| {
            vec![
                text(&i["id"]),
                text(&i["name"]),
                text(&i["state"]),
                text(&i["reference"]),
                text(&i["lastError"]["message"]),
            ]
        })
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(
        &["IMAGE", "NAME", "STATE", "REFERENCE", "LAST ERROR"],
        &images,
    ));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_instances_and_images_as_columns() {
        let doc = serde_json::json!({
            "controller": {"queue_depth": 0, "in_flight": 1, "reconciles_total": 7, "errors_total": 1, "last_resync_at": "2026-11-28T20:00:00Z"},
            "engine": {"reachable": true, "version": "20.10.24", "apiVersion": "1.41"},
            "instances": [{
                "id": "i-0123456789abcdef0", "region": "us-east-1", "desired": "running", "state": "running",
                "generation": 2, "observedGeneration": 2,
                "container": {"id": "3f5e0c1d2b7a9e8f6d4c", "state": "running", "ipAddress": "172.17.0.2",
                               "ports": [{"containerPort": 22, "hostPort": 55705}]},
                "lastError": null
            }],
            "images": [{"id": "ami-000001", "name": "test-ami", "state": "available", "reference": "localstack-ec2/test-ami:ami-000001"}]
        });
        let out = render(&doc);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("engine: reachable (version 20.10.24, api 1.41)"),
            "{out}"
        );
        let header = lines
            .iter()
            .position(|l| l.starts_with("INSTANCE"))
            .unwrap();
        let row = lines[header + 1];
        assert!(
            row.starts_with("i-0123456789abcdef0   us-east-1   running"),
            "{row}"
        );
        assert!(
            row.contains("2/2") && row.contains("3f5e0c1d2b7a") && row.contains("55705->22"),
            "{row}"
        );
        // Columns line up: each header starts where its cells start.
        let col = lines[header].find("STATE").unwrap();
        assert_eq!(&row[col..col + 7], "running");
        assert!(out.contains("ami-000001   test-ami   available"), "{out}");
        assert!(
            !out.contains("ENGINE"),
            "a status without `engines` (an older ec2d) has no engine table: {out}"
        );
    }

    #[test]
    fn instances_show_their_engine_and_image_copy_when_several_engines_run_them() {
        let doc = serde_json::json!({
            "controller": {"queue_depth": 0, "in_flight": 0, "reconciles_total": 3, "errors_total": 0, "last_resync_at": null},
            "engine": {"reachable": true, "version": "20.10.24", "apiVersion": "1.41"},
            "instances": [
                {"id": "i-0123456789abcdef0", "region": "us-east-1", "desired": "running", "state": "pending",
                 "engine": "unix:///run/b.sock", "imageCopy": {"from": "unix:///var/run/docker.sock", "bytesCopied": 512},
                 "generation": 1, "observedGeneration": 1, "container": null, "lastError": null},
                {"id": "i-0123456789abcdef1", "region": "us-east-1", "desired": "running", "state": "running",
                 "engine": "unix:///var/run/docker.sock", "imageCopy": null,
                 "generation": 1, "observedGeneration": 1, "container": null, "lastError": null}
            ],
            "images": []
        });
        let out = render(&doc);
        let lines: Vec<&str> = out.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("INSTANCE"))
            .unwrap();
        assert!(lines[header].contains("ENGINE"), "{out}");
        let col = lines[header].find("ENGINE").unwrap();
        assert!(
            lines[header + 1][col..].starts_with(
                "unix:///run/b.sock (copying image from unix:///var/run/docker.sock: 512 bytes)"
            ),
            "{out}"
        );
        assert!(
            lines[header + 2][col..].starts_with("unix:///var/run/docker.sock "),
            "{out}"
        );
    }

    #[test]
    fn renders_one_row_per_engine() {
        let doc = serde_json::json!({
            "controller": {"queue_depth": 0, "in_flight": 0, "reconciles_total": 3, "errors_total": 0, "last_resync_at": null},
            "engine": {"reachable": true, "version": "20.10.24", "apiVersion": "1.41"},
            "engines": [
                {"name": "unix:///var/run/docker.sock", "zones": [], "default": true, "reachable": true,
                 "version": "20.10.24", "apiVersion": "1.41", "lastError": null, "checkedAt": "2026-12-06T21:00:00Z"},
                {"name": "tcp://10.0.0.12:2375", "zones": ["us-east-1b", "us-east-1c"], "default": false,
                 "reachable": false, "version": null, "apiVersion": null,
                 "lastError": "engine unavailable: connection refused", "checkedAt": "2026-12-06T21:00:02Z"}
            ],
            "instances": [],
            "images": []
        });
        let out = render(&doc);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("engine: reachable"), "{out}");
        let header = lines.iter().position(|l| l.starts_with("ENGINE")).unwrap();
        let default = lines[header + 1];
        let b = lines[header + 2];
        assert!(
            default.starts_with("unix:///var/run/docker.sock   -")
                && default.contains("yes")
                && default.contains("reachable")
                && default.contains("20.10.24")
                && default.contains("2026-12-06T21:00:00Z"),
            "{default}"
        );
        assert!(
            b.starts_with("tcp://10.0.0.12:2375")
                && b.contains("us-east-1b,us-east-1c")
                && b.contains("UNREACHABLE")
                && b.ends_with("engine unavailable: connection refused"),
            "{b}"
        );
        let col = lines[header].find("STATE").unwrap();
        assert_eq!(&b[col..col + 11], "UNREACHABLE");
        assert!(lines[header + 3].is_empty(), "{out}");
    }
}
