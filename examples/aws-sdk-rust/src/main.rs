//! Drives ec2d through the official AWS SDK for Rust: launch one instance, wait for it with the
//! SDK's own waiters through stop, start and terminate.
//!
//! `EC2D_ENDPOINT` (default `http://localhost:4566`) is the endpoint; the AMI is the first
//! argument, else `EC2D_AMI`, else the first Docker-backed AMI DescribeImages lists.
//! Credentials are the dummy `test`/`test` ec2d accepts, the region `us-east-1`. Each step is
//! printed; any failure or unexpected state ends the program with a non-zero status.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::config::{Credentials, Region};
use aws_sdk_ec2::error::DisplayErrorContext;
use aws_sdk_ec2::types::{Filter, InstanceStateName, InstanceType};
use aws_sdk_ec2::Client;

/// How long each waiter may take. The waiters poll every 15 s at first (EC2's model), so a
/// transition ec2d makes in a second still costs one poll interval.
const MAX_WAIT: Duration = Duration::from_secs(180);

type Failure = Box<dyn Error>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("done");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let endpoint =
        std::env::var("EC2D_ENDPOINT").unwrap_or_else(|_| "http://localhost:4566".to_string());
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "ec2d-example"))
        .load()
        .await;
    let client = Client::new(&config);
    println!("endpoint: {endpoint}");

    let ami = ami(&client).await?;
    println!("ami: {ami}");

    let launched = client
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::T2Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .map_err(|e| failure("RunInstances", e))?;
    let id = launched
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .ok_or("RunInstances answered no instance")?
        .to_string();
    println!("launched: {id}");

    let started = Instant::now();
    client
        .wait_until_instance_running()
        .instance_ids(&id)
        .wait(MAX_WAIT)
        .await
        .map_err(|e| failure("waiting for running", e))?;
    expect_state(&client, &id, InstanceStateName::Running).await?;
    println!("running ({:.1} s)", started.elapsed().as_secs_f64());

    client
        .stop_instances()
        .instance_ids(&id)
        .send()
        .await
        .map_err(|e| failure("StopInstances", e))?;
    let started = Instant::now();
    client
        .wait_until_instance_stopped()
        .instance_ids(&id)
        .wait(MAX_WAIT)
        .await
        .map_err(|e| failure("waiting for stopped", e))?;
    expect_state(&client, &id, InstanceStateName::Stopped).await?;
    println!("stopped ({:.1} s)", started.elapsed().as_secs_f64());

    client
        .start_instances()
        .instance_ids(&id)
        .send()
        .await
        .map_err(|e| failure("StartInstances", e))?;
    let started = Instant::now();
    client
        .wait_until_instance_running()
        .instance_ids(&id)
        .wait(MAX_WAIT)
        .await
        .map_err(|e| failure("waiting for running again", e))?;
    expect_state(&client, &id, InstanceStateName::Running).await?;
    println!("running again ({:.1} s)", started.elapsed().as_secs_f64());

    client
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .map_err(|e| failure("TerminateInstances", e))?;
    let started = Instant::now();
    client
        .wait_until_instance_terminated()
        .instance_ids(&id)
        .wait(MAX_WAIT)
        .await
        .map_err(|e| failure("waiting for terminated", e))?;
    expect_state(&client, &id, InstanceStateName::Terminated).await?;
    println!("terminated ({:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The AMI to launch: the first argument, `EC2D_AMI`, or the first Docker-backed AMI.
async fn ami(client: &Client) -> Result<String, Failure> {
    if let Some(ami) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("EC2D_AMI").ok())
    {
        return Ok(ami);
    }
    // Docker-backed AMIs only: the public catalogue's (Amazon Linux, Ubuntu...) need their
    // image pulled and tagged first.
    let docker = Filter::builder()
        .name("tag:ec2_vm_manager")
        .values("docker")
        .build();
    let images = client
        .describe_images()
        .filters(docker)
        .send()
        .await
        .map_err(|e| failure("DescribeImages", e))?;
    let first = images
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .ok_or("DescribeImages lists no image; pass an AMI id")?;
    Ok(first.to_string())
}

/// Checks with DescribeInstances that the instance shows `want`, as the waiter said.
async fn expect_state(client: &Client, id: &str, want: InstanceStateName) -> Result<(), Failure> {
    let described = client
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| failure("DescribeInstances", e))?;
    let state = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .and_then(|i| i.state())
        .and_then(|s| s.name())
        .cloned();
    match state {
        Some(state) if state == want => Ok(()),
        other => Err(format!("{id} shows {other:?}, expected {want}").into()),
    }
}

/// An SDK error with its whole chain of causes (its `Display` alone says only "service error").
fn failure(step: &str, error: impl Error + 'static) -> Failure {
    format!("{step}: {}", DisplayErrorContext(error)).into()
}
