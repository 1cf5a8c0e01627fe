//! [`Nginx`]: a real nginx in front of test servers, configured from the
//! deployment's own template (`deploy/nginx/roomcast.conf.template`), so the
//! configuration users deploy is the one the tests exercise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::redis::free_port;

/// An nginx child process, killed (and its files removed) on drop.
pub struct Nginx {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Nginx {
    /// Starts nginx on a free port, proxying to the two upstream addresses.
    pub async fn start(upstreams: [&str; 2]) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("roomcast-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the nginx directory");
        let template =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/roomcast.conf.template");
        let site = std::fs::read_to_string(&template)
            .unwrap_or_else(|e| panic!("reading {}: {e}", template.display()))
            .replace("${ROOMCAST_LISTEN}", &format!("127.0.0.1:{port}"))
            .replace("${ROOMCAST_UPSTREAM_1}", upstreams[0])
            .replace("${ROOMCAST_UPSTREAM_2}", upstreams[1]);
        std::fs::write(dir.join("roomcast.conf"), site).expect("writing roomcast.conf");
        let main = format!(
            "worker_processes 1;\nerror_log {dir}/error.log warn;\npid {dir}/nginx.pid;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
             fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  \
             include {dir}/roomcast.conf;\n}}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("writing nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            // Not inherited: nginx's workers could outlive the test and hold
            // its output open.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nginx ({e}): install it with `apt-get install nginx` (`cargo xtask test` does this)")
            });
        let nginx = Self { port, dir, child };
        nginx.wait_ready().await;
        nginx
    }

    /// `ws://127.0.0.1:<port>/ws`, through nginx.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// `http://127.0.0.1:<port>`, through nginx.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "nginx did not listen within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian installs nginx in /usr/sbin, which is not on every user's PATH.
fn nginx_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() { sbin.to_owned() } else { PathBuf::from("nginx") }
}
