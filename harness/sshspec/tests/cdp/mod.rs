//! A small Chrome DevTools Protocol client over `--remote-debugging-pipe` (fds 3 and 4, messages
//! ended by NUL): enough to load a local page, evaluate JavaScript in it and take a screenshot.
//! A pipe needs no port and no websocket crate; the browser is killed when the handle drops.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The Chromium binary, from Debian's `chromium` package (scripts/install-test-deps.sh).
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub struct Browser {
    child: Child,
    to: std::fs::File,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    /// Events read while waiting for a reply.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// An attached page: the session id commands for it carry.
pub struct Page(String);

fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

impl Browser {
    pub fn launch(_dir: &Path) -> Result<Browser, String> {
        let bin = chromium().ok_or("no chromium")?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (cmd_r, cmd_w) = pipe().map_err(|e| e.to_string())?;
        let (resp_r, resp_w) = pipe().map_err(|e| e.to_string())?;
        let mut c = Command::new(bin);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so the renderer and helper processes go with it.
        .process_group(0);
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(cmd_r, 3) < 0 || libc::dup2(resp_w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| format!("starting chromium: {e}"))?;
        // SAFETY: these are our descriptors; the child has its own copies as 3 and 4.
        let (to, mut from_file) = unsafe {
            libc::close(cmd_r);
            libc::close(resp_w);
            (std::fs::File::from_raw_fd(cmd_w), std::fs::File::from_raw_fd(resp_r))
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = match from_file.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|b| *b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1])
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Browser { child, to, from: rx, next_id: 0, events: Vec::new(), _profile: profile })
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to.write_all(&bytes).map_err(|e| format!("{method}: {e}"))?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self.from.recv_timeout(left).map_err(|_| format!("{method}: no reply within {WAIT:?}"))?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            self.events.push(v);
        }
    }

    fn wait_event(&mut self, session: &str, method: &str) -> Result<(), String> {
        let is = |v: &Value| v["method"] == method && v["sessionId"] == session;
        if let Some(i) = self.events.iter().position(is) {
            self.events.remove(i);
            return Ok(());
        }
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self.from.recv_timeout(left).map_err(|_| format!("no {method} within {WAIT:?}"))?;
            if is(&v) {
                return Ok(());
            }
            self.events.push(v);
        }
    }

    /// Opens `file` in a new tab at 1400×900 and waits for its load event.
    pub fn open(&mut self, file: &Path) -> Result<Page, String> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}))?;
        let s = attached["sessionId"].as_str().ok_or("no session")?.to_owned();
        self.call(Some(&s), "Page.enable", json!({}))?;
        self.call(
            Some(&s),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        let url = format!("file://{}", file.canonicalize().map_err(|e| e.to_string())?.display());
        self.call(Some(&s), "Page.navigate", json!({"url": url}))?;
        self.wait_event(&s, "Page.loadEventFired")?;
        Ok(Page(s))
    }

    /// Evaluates `js` in the page and returns its value (JSON).
    pub fn eval(&mut self, page: &Page, js: &str) -> Result<Value, String> {
        let r = self.call(
            Some(&page.0),
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("{js}: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// What the page shows now, as a PNG.
    pub fn screenshot(&mut self, page: &Page, to: &Path) -> Result<(), String> {
        use base64::Engine;
        let r = self.call(Some(&page.0), "Page.captureScreenshot", json!({"format": "png"}))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().ok_or("no data")?)
            .map_err(|e| e.to_string())?;
        std::fs::write(to, png).map_err(|e| e.to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals the process group this handle started.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
