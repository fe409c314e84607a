//! A Mosquitto 2 of the test's own, with the dynamic-security plugin: the
//! production setup of docs/mqtt-security.md, never the machine's anonymous
//! broker. Each one has a free loopback port, a temp dir with its config,
//! its dynsec file (made by `mosquitto_ctrl dynsec init`) and its log, and is
//! killed when dropped. Missing Mosquitto fails the test: it is a declared
//! dependency of the test suite (Debian: `mosquitto`, `mosquitto-clients`).

use std::cell::RefCell;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lastseen_cloud::config::{Config, Secret};
use lastseen_cloud::mqtt::MqttMode;

/// The dynamic-security admin; the cloud logs in as it.
pub(crate) const ADMIN: &str = "admin";
/// How long the broker may take to listen.
const STARTUP: Duration = Duration::from_secs(10);

/// Where distributions put the plugin; `LASTSEEN_TEST_DYNSEC_PLUGIN` overrides.
const PLUGIN_PATHS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
];

pub(crate) struct DynsecBroker {
    /// `127.0.0.1:port`, for devices and `mosquitto_ctrl`.
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) admin_password: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for DynsecBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

thread_local! {
    /// Brokers started through `use_broker`, which only hands back an
    /// address: they live until the test's thread ends (libtest runs each
    /// test on a thread of its own).
    static KEPT: RefCell<Vec<DynsecBroker>> = const { RefCell::new(Vec::new()) };
}

/// The admin password of the broker this test started at `address`.
pub(crate) fn admin_password_of(address: &str) -> Option<String> {
    KEPT.with(|kept| {
        kept.borrow()
            .iter()
            .find(|broker| broker.address == address)
            .map(|broker| broker.admin_password.clone())
    })
}

fn plugin() -> PathBuf {
    if let Some(path) = std::env::var_os("LASTSEEN_TEST_DYNSEC_PLUGIN") {
        return PathBuf::from(path);
    }
    PLUGIN_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "the Mosquitto dynamic-security plugin is missing (looked in {PLUGIN_PATHS:?}); \
                 install Debian's `mosquitto` or set LASTSEEN_TEST_DYNSEC_PLUGIN"
            )
        })
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): install Debian's `mosquitto` and `mosquitto-clients`"
            )
        })
}

impl DynsecBroker {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = lastseen_cloud::testkit::free_loopback_port()
            .expect("a free port")
            .port();
        let admin_password = uuid::Uuid::new_v4().simple().to_string();
        let dynsec_file = dir.path().join("dynamic-security.json");
        let dynsec_path = dynsec_file.to_str().expect("UTF-8 temp path");
        // 2.0.11: `dynsec init FILE USER [PASSWORD]` writes an admin with
        // the `admin` role (the control topics, `$SYS`, and subscribe/read
        // `#`, but publish nothing) and default access: publish and
        // subscribe denied, read and unsubscribe allowed.
        let init = run(
            "mosquitto_ctrl",
            &["dynsec", "init", dynsec_path, ADMIN, &admin_password],
        );
        assert!(
            init.status.success(),
            "mosquitto_ctrl dynsec init: {init:?}"
        );
        let config_file = dir.path().join("mosquitto.conf");
        let log_file = dir.path().join("mosquitto.log");
        std::fs::write(
            &config_file,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous false\n\
                 per_listener_settings false\n\
                 persistence false\n\
                 plugin {plugin}\n\
                 plugin_opt_config_file {dynsec}\n\
                 log_dest file {log}\n\
                 log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
                 # Run as root, Mosquitto would switch to the `mosquitto` user, which\n\
                 # cannot read or save the files in this private temp dir; as any\n\
                 # other user, this line does nothing.\n\
                 user root\n",
                plugin = plugin().display(),
                dynsec = dynsec_path,
                log = log_file.display(),
            ),
        )
        .expect("writes mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start mosquitto ({e}): install Debian's `mosquitto`")
            });
        let mut broker = Self {
            address: format!("127.0.0.1:{port}"),
            port,
            admin_password,
            child,
            dir,
        };
        broker.wait_until_listening();
        broker
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect(&self.address).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto does not listen on {}:\n{}",
                self.address,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("mosquitto.log")).unwrap_or_default()
    }

    /// Settings for a cloud that uses this broker in external + dynsec mode,
    /// under a unique topic prefix and share group.
    pub(crate) fn configure(&self, config: &mut Config) {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        config.mqtt.mode = MqttMode::External;
        config.mqtt.url = Some(format!("mqtt://{}", self.address));
        config.mqtt.dynsec = true;
        config.mqtt.username = Some(ADMIN.to_owned());
        config.mqtt.password = Some(Secret::new(self.admin_password.clone()));
        config.mqtt.topic_prefix = format!("lastseen-test/{unique}");
        config.mqtt.shared_group = format!("g{unique}");
    }

    /// Runs `mosquitto_ctrl dynsec ARGS` as the admin; its output.
    pub(crate) fn ctrl(&self, args: &[&str]) -> Output {
        let port = self.port.to_string();
        let mut all = vec![
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            ADMIN,
            "-P",
            &self.admin_password,
            "dynsec",
        ];
        all.extend_from_slice(args);
        run("mosquitto_ctrl", &all)
    }

    /// Keeps the broker running until the current test ends.
    pub(crate) fn keep_for_this_test(self) {
        KEPT.with(|kept| kept.borrow_mut().push(self));
    }
}
