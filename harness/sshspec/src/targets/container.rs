//! The container backend: a target image (built offline by scripts/build-images.sh) started with
//! testcontainers, its SSH port published on 127.0.0.1 only, ready once its identification line
//! can be read (testcontainers has no TCP wait), its log streamed into the run, and removed when
//! the target stops, on failure, on Ctrl-C (the runner's cancel path stops targets) and, as a
//! last resort, when its handle drops. Containers carry the owning process id as a label, so a
//! later run removes what a killed one left behind.

use super::{Logs, StartError, TargetInfo};
use crate::peer::Credentials;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptionsBuilder};
use testcontainers::core::{ContainerPort, IntoContainerPort};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

/// The label naming the sshspec process that owns a container.
const OWNER_LABEL: &str = "sshspec.pid";
const SSH_PORT: u16 = 22;
/// Starting is not judged, so the wait is generous: a library target boots an interpreter or a VM
/// and makes RSA host keys, and on a loaded machine that alone can take tens of seconds.
const BANNER_DEADLINE: Duration = Duration::from_secs(120);
/// Containers starting at once. Twenty images starting together on two cores (and a FUSE overlay)
/// took over 30 s each to answer; a few at a time are each up in seconds, and all sooner.
static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
pub const BUILD_HINT: &str = "build it with `sshspec images build` (scripts/build-images.sh)";

pub struct Container {
    inner: ContainerAsync<GenericImage>,
}

impl Container {
    /// Removes the container (stopping it first); errors are reported, not fatal.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    pub async fn stop(self) {
        let id = self.inner.id().to_owned();
        if let Err(e) = self.inner.rm().await {
            eprintln!("warning: removing container {id}: {e}");
        }
    }
}

fn docker() -> Result<Docker, StartError> {
    Docker::connect_with_local_defaults()
        .map_err(|e| StartError::Missing(format!("cannot reach the Docker engine: {e}")))
}

/// `repository:tag` of a target's image (`sshspec/openssh-9.2p1` means `:latest`).
fn image_ref(t: &TargetInfo) -> Result<(String, String), StartError> {
    let image = t.image.as_deref().ok_or_else(|| StartError::Failed(format!("{} names no image", t.name)))?;
    Ok(match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    })
}

/// Starts a target's container and waits for its banner on the published port.
pub async fn start(t: &TargetInfo, creds: &Credentials) -> Result<(Container, SocketAddr, String, Logs), StartError> {
    let docker = docker()?;
    docker.ping().await.map_err(|e| StartError::Missing(format!("the Docker engine does not answer: {e}")))?;
    sweep_orphans(&docker).await;
    let (repo, tag) = image_ref(t)?;
    // testcontainers would try to pull a missing image, and no registry answers here: say so first.
    if docker.inspect_image(&format!("{repo}:{tag}")).await.is_err() {
        return Err(StartError::Missing(format!("image {repo}:{tag} is not built; {BUILD_HINT}")));
    }
    let _starting = STARTING.acquire().await.map_err(|e| StartError::Failed(format!("{}: {e}", t.name)))?;
    let port = SSH_PORT.tcp();
    let request = GenericImage::new(repo.clone(), tag.clone())
        .with_exposed_port(port)
        .with_cmd(["/usr/local/bin/sshspec-serve", "main"].iter().copied().chain(t.config.iter().map(String::as_str)))
        .with_env_var("SSHSPEC_PASSWORD", creds.password.clone())
        .with_env_var("SSHSPEC_PUBKEY", creds.authorized_keys())
        .with_label(OWNER_LABEL, std::process::id().to_string())
        .with_label("sshspec.target", t.name.clone())
        .with_startup_timeout(Duration::from_secs(60))
        .with_host_config_modifier(move |h| {
            // Loopback only: nothing outside this machine can reach a target.
            let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) };
            h.publish_all_ports = Some(false);
            h.port_bindings = Some(HashMap::from([(port.to_string(), Some(vec![binding]))]));
        });
    let c = request
        .start()
        .await
        .map_err(|e| StartError::Failed(format!("{}: the container did not start: {e}", t.name)))?;
    let logs = Logs::default();
    for stream in [c.stdout(true), c.stderr(true)] {
        let logs = logs.clone();
        tokio::spawn(async move {
            let mut lines = stream.lines();
            while let Ok(Some(l)) = lines.next_line().await {
                logs.push(l);
            }
        });
    }
    let container = Container { inner: c };
    match wait_for_banner(&container, port, t).await {
        Ok((addr, banner)) => Ok((container, addr, banner, logs)),
        Err(e) => {
            // Give the log streams a moment to deliver why the server did not come up.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let tail = logs.tail(20).join("\n");
            container.stop().await;
            Err(StartError::Failed(format!("{e}\n{tail}")))
        }
    }
}

async fn wait_for_banner(c: &Container, port: ContainerPort, t: &TargetInfo) -> Result<(SocketAddr, String), String> {
    let inner = &c.inner;
    let host_port = inner.get_host_port_ipv4(port).await.map_err(|e| format!("{}: no published port: {e}", t.name))?;
    let addr: SocketAddr = ([127, 0, 0, 1], host_port).into();
    let deadline = tokio::time::Instant::now() + BANNER_DEADLINE;
    loop {
        if !inner.is_running().await.unwrap_or(false) {
            let code = inner.exit_code().await.ok().flatten();
            return Err(format!("{}: the container exited at start (exit code {code:?})", t.name));
        }
        // Docker's port proxy accepts before the server listens; only a banner means ready.
        match super::process::read_banner(addr, Duration::from_secs(2)).await {
            Ok(banner) => return Ok((addr, banner)),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(format!("{}: no banner on {addr} within {BANNER_DEADLINE:?}: {e}", t.name));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// Removes containers whose owning sshspec process is gone (killed with no chance to clean up).
async fn sweep_orphans(docker: &Docker) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let options = ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])])),
                ..Default::default()
            };
            let Ok(list) = docker.list_containers(Some(options)).await else { return };
            for c in list {
                let owner = c.labels.as_ref().and_then(|l| l.get(OWNER_LABEL)).and_then(|p| p.parse::<i32>().ok());
                let alive = owner.is_some_and(|pid| {
                    // SAFETY: signal 0 only checks that the process exists.
                    unsafe { libc::kill(pid, 0) == 0 }
                });
                if let (Some(id), false) = (c.id, alive) {
                    let force = RemoveContainerOptionsBuilder::new().force(true).build();
                    if docker.remove_container(&id, Some(force)).await.is_ok() {
                        eprintln!("note: removed container {id} left behind by an sshspec process that is gone");
                    }
                }
            }
        })
        .await;
}

/// Whether a container target's image is built here, in words (for `sshspec targets`).
pub fn availability(t: &TargetInfo) -> String {
    let Ok((repo, tag)) = image_ref(t) else { return "no image named".into() };
    let image = format!("{repo}:{tag}");
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Created}}", &image])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Err(_) => "missing: docker (the Docker CLI) is not installed".into(),
        Ok(o) if o.status.success() => {
            let created = String::from_utf8_lossy(&o.stdout);
            format!("ready (image {image}, built {})", created.trim().get(..19).unwrap_or(created.trim()))
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No such image") => {
            format!("missing: image {image} not built; {BUILD_HINT}")
        }
        Ok(o) => format!("missing: Docker engine: {}", String::from_utf8_lossy(&o.stderr).trim()),
    }
}
