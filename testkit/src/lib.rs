//! Test helpers shared by Zhucan's integration tests.
//!
//! [`Browser`] starts a real headless Chromium through `chromedriver` (Debian's `chromium` and
//! `chromium-driver` packages; `.ci/run` installs them) and hands out a fantoccini WebDriver
//! client. Screenshots go to `target/screenshots/` so people can look at them after a run.

pub mod city;
pub mod kiosk;
pub mod postgres;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A local port for a test server that will be stopped and started again on the same port
/// (a restart, a receiver that comes up later). Ports from `bind(…:0)` and the source ports of
/// outgoing connections come from Linux's ephemeral range (32768–60999), so while the server is
/// down another test could take such a port; this one lies below that range (20000–31999), in a
/// block of its own per test process, and is free when returned.
pub fn reserved_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 500) as u16 * 24;
    loop {
        let port = 20_000 + (offset + NEXT.fetch_add(1, Ordering::SeqCst)) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// How long a test waits for a condition (a page text, a browser session) before it fails.
/// Generous, because a loaded 2-core machine is slow; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(120);
pub use fantoccini::{Client, Locator};

/// A chromedriver process and one browser session. Dropping it ends both.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium window of the given size.
    pub async fn launch(width: u32, height: u32) -> anyhow::Result<Browser> {
        // Two rustls crypto providers are linked into test binaries that also use reqwest, and
        // rustls refuses to guess: choose one for the process (a second call is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let driver_bin = find(&["chromedriver", "/usr/bin/chromedriver"]).context(
            "chromedriver not found: install Debian's chromium and chromium-driver packages \
             (apt-get install -y chromium chromium-driver fonts-wqy-microhei)",
        )?;
        let chrome_bin = find(&["chromium", "/usr/bin/chromium", "chromium-browser"])
            .context("chromium not found: apt-get install -y chromium")?;
        let profile = tempfile::tempdir()?;
        // The port is free when asked for, but another process may take it before chromedriver
        // binds it; chromedriver then exits, and a new port is tried.
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut driver = Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", driver_bin.display()))?;
            match connect(port, &chrome_bin, &profile, width, height, &mut driver).await {
                Ok(client) => {
                    let browser = Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                    browser.client.set_window_size(width, height).await?;
                    return Ok(browser);
                }
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
    }

    /// Resizes the window so that the page's viewport (`innerWidth` × `innerHeight`, in CSS px) is
    /// exactly `width` × `height`, as on a screen of that size: the size given to [`launch`] is
    /// the whole window, of which headless Chromium gives the page less. Needs a page loaded
    /// (any page will do; the size stays for the pages opened after it).
    ///
    /// [`launch`]: Browser::launch
    pub async fn set_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let want = (i64::from(width), i64::from(height));
        let inner = || async {
            let v = self
                .client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await?;
            let px = |i: usize| v[i].as_i64().context("innerWidth/innerHeight");
            anyhow::Ok((px(0)?, px(1)?))
        };
        let mut seen = inner().await?;
        for _ in 0..5 {
            if seen == want {
                return Ok(());
            }
            // the window's frame (outer minus inner) stays the same when the window is resized
            let (outer_w, outer_h) = self.client.get_window_size().await?;
            let w = i64::try_from(outer_w)? + want.0 - seen.0;
            let h = i64::try_from(outer_h)? + want.1 - seen.1;
            self.client
                .set_window_size(u32::try_from(w)?, u32::try_from(h)?)
                .await?;
            // the page may hear of the new size a moment later
            let start = Instant::now();
            loop {
                seen = inner().await?;
                if seen == want || start.elapsed() > Duration::from_secs(3) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if seen == want {
            return Ok(());
        }
        bail!(
            "the viewport is {}x{}, not {width}x{height}",
            seen.0,
            seen.1
        )
    }

    /// Saves a PNG screenshot as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The visible text of the page body.
    pub async fn body_text(&self) -> anyhow::Result<String> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    /// Waits until the body text contains `needle`, up to `timeout`.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let text = self.body_text().await.unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
            if start.elapsed() > timeout {
                bail!("page never showed {needle:?} within {timeout:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (and then chromedriver, on drop).
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(
    port: u16,
    chrome: &std::path::Path,
    profile: &tempfile::TempDir,
    width: u32,
    height: u32,
    driver: &mut Child,
) -> anyhow::Result<Client> {
    let args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--hide-scrollbars".into(),
        "--lang=zh-CN".into(),
        format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let caps = serde_json::json!({
        "goog:chromeOptions": { "binary": chrome.display().to_string(), "args": args }
    });
    let caps = match caps {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let attempt = fantoccini::ClientBuilder::rustls()?
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(client) => return Ok(client),
            // chromedriver takes a moment to listen (unless it exited: port taken)
            Err(e) if matches!(driver.try_wait(), Ok(Some(_))) => {
                bail!("chromedriver exited (its port was taken?): {e}")
            }
            Err(_) if start.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => bail!("could not start a Chromium session through chromedriver: {e}"),
        }
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    for n in names {
        let p = PathBuf::from(n);
        if p.is_absolute() {
            if p.exists() {
                return Some(p);
            }
            continue;
        }
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let c = dir.join(n);
                if c.is_file() {
                    return Some(c);
                }
            }
        }
    }
    None
}

/// `<workspace>/target/screenshots` (or under `CARGO_TARGET_DIR`).
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("screenshots")
}

/// A valid 18-character national ID number (GB 11643 check digit) for a birth date: the `seq`-th
/// of that day, a man's or a woman's (the 17th digit's parity), in Yiwu's area code.
pub fn national_id(birth: chrono::NaiveDate, seq: u32, male: bool) -> String {
    let seq = seq * 2 + u32::from(male);
    let body = format!("330782{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    let check = zhucan_domain::NationalId::check_digit(&body).expect("17 digits");
    format!("{body}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_a_chinese_page_and_takes_a_screenshot() {
        let html = "data:text/html;charset=utf-8,<h1 style='font-size:64px'>助餐 你好</h1>";
        let b = Browser::launch(800, 600).await.expect("browser");
        b.client.goto(html).await.unwrap();
        let text = b.wait_for_text("助餐", WAIT).await.unwrap();
        assert!(text.contains("你好"));
        let path = b.screenshot("testkit-smoke").await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        b.close().await.unwrap();
    }
}
