//! examples/k8s/ and the Dockerfile agree with the binary: the image the Dockerfile builds,
//! its user, the admin port and probes the runner serves, the shard arguments each pod gets
//! (parsed by the binary's own argument parser), the settings in the environment (loaded by
//! the runner's own settings loader) and the bot files in the ConfigMap (loaded by the
//! runner's own bot loader). No container tool runs here: this is what can be checked.

use std::collections::HashMap;
use std::path::Path;

use clap::Parser;
use serde::Deserialize;
use serde_yaml::Value;
use zimfleet::loadtest::shard::Shard;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a manifest file.
fn documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The image the Dockerfile's own build line tags, and the uid it runs as.
fn dockerfile() -> (String, u64, Vec<u64>) {
    let docker = read("Dockerfile");
    let tag = docker
        .lines()
        .find_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("docker build -t ")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the Dockerfile shows its build line")
        .to_string();
    let user = docker
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .and_then(|u| u.split(':').next())
        .and_then(|u| u.trim().parse().ok())
        .expect("USER uid");
    let exposed = docker
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .map(|ports| {
            ports
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect()
        })
        .expect("EXPOSE");
    (tag, user, exposed)
}

#[test]
fn the_dockerfile_builds_the_way_ci_does_and_runs_unprivileged() {
    let docker = read("Dockerfile");
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let rust = manifest["package"]["rust-version"].as_str().unwrap();
    let version = manifest["package"]["version"].as_str().unwrap();
    assert!(
        docker.contains(&format!("FROM rust:{rust}-bookworm AS build")),
        "the toolchain of rust-version"
    );
    assert_eq!(
        docker.matches("FROM ").count(),
        2,
        "multi-stage: build, runtime"
    );
    assert!(docker.contains("cargo build --release --locked --bin zimfleet"));
    assert!(docker.contains("FROM debian:bookworm-slim"));
    let (tag, uid, exposed) = dockerfile();
    assert_eq!(
        tag,
        format!("zimfleet:{version}"),
        "the tag is the crate's version"
    );
    assert!(docker.contains(&format!("org.opencontainers.image.version=\"{version}\"")));
    assert!(uid >= 1000, "non-root");
    assert!(exposed.contains(&7480));
    assert!(docker.contains("ENTRYPOINT [\"/usr/local/bin/zimfleet\"]"));
    // Everything the build copies is in the context .dockerignore leaves.
    let ignored = read(".dockerignore");
    for copied in ["src", "config", "bots", "Cargo.toml", "Cargo.lock"] {
        let copies = |l: &str| l.starts_with("COPY ") && l.split_whitespace().any(|w| w == copied);
        assert!(docker.lines().any(copies), "{copied}");
        assert!(
            !ignored.lines().any(|l| l.trim_end_matches('/') == copied),
            "{copied} ignored"
        );
    }
}

#[derive(Parser)]
struct Run {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Run(zimfleet::runner::RunArgs),
    Loadtest(zimfleet::loadtest::cli::LoadtestArgs),
}

/// Container `args` with `$(VAR)` expanded from `env` the way Kubernetes does.
fn expand(args: &Value, env: &HashMap<String, String>) -> Vec<String> {
    args.as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            let mut a = text(a).to_string();
            for (k, v) in env {
                a = a.replace(&format!("$({k})"), v);
            }
            assert!(!a.contains("$("), "an unset variable in {a}");
            a
        })
        .collect()
}

/// The container's plain `value` variables.
fn env_values(container: &Value) -> HashMap<String, String> {
    container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some((
                text(&e["name"]).to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn the_statefulset_shards_by_ordinal_and_agrees_with_the_binary() {
    let docs = documents("examples/k8s/fleet-statefulset.yaml");
    let set = of_kind(&docs, "StatefulSet")[0];
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    let pod = &set["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let (tag, uid, _) = dockerfile();
    assert_eq!(
        text(&container["image"]),
        tag,
        "the image the Dockerfile builds"
    );
    assert_eq!(
        pod["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(uid)
    );
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );

    // The ordinal comes from the pod-index label; SHARDS is the replica count.
    let env = env_values(container);
    assert_eq!(env["SHARDS"], replicas.to_string());
    let index = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SHARD_INDEX")
        .unwrap();
    assert_eq!(
        text(&index["valueFrom"]["fieldRef"]["fieldPath"]),
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    let mut shards = Vec::new();
    for ordinal in 0..replicas {
        let mut env = env.clone();
        env.insert("SHARD_INDEX".into(), ordinal.to_string());
        let mut argv = vec!["zimfleet".to_string()];
        argv.extend(expand(&container["args"], &env));
        let parsed = Run::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let Command::Run(args) = parsed.command else {
            panic!("not `zimfleet run`")
        };
        shards.push(args.shard.expect("--shard"));
        assert_eq!(
            args.bots.as_deref(),
            Some(Path::new(text(&container["volumeMounts"][0]["mountPath"]))),
            "--bots is the ConfigMap's mount"
        );
    }
    let want: Vec<Shard> = (0..replicas as u32)
        .map(|index| Shard {
            index,
            count: replicas as u32,
        })
        .collect();
    assert_eq!(shards, want, "pod K runs shard K/N");

    // The settings in the environment load, and the admin face listens on the probed port.
    let zimfleet_env: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("ZIMFLEET__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let settings = zimfleet::runner::settings::load(None, Some(zimfleet_env)).unwrap();
    let admin = settings
        .admin_listen()
        .unwrap()
        .expect("the admin face is on");
    let port = &container["ports"][0];
    assert_eq!(
        port["containerPort"].as_u64(),
        Some(u64::from(admin.port()))
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(&get["path"]), "/health", "{probe}");
        assert_eq!(get["port"], port["name"], "{probe} on the admin port");
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(text(&annotations["prometheus.io/path"]), "/metrics");
    assert_eq!(
        text(&annotations["prometheus.io/port"]),
        admin.port().to_string()
    );
    assert!(
        !settings.backend.url.is_empty(),
        "shards share one backend, never an embedded one each"
    );

    // The headless Service governs the set and selects its pods.
    let service = of_kind(&docs, "Service")[0];
    assert_eq!(service["metadata"]["name"], set["spec"]["serviceName"]);
    assert_eq!(text(&service["spec"]["clusterIP"]), "None");
    assert_eq!(service["spec"]["selector"], pod["metadata"]["labels"]);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);

    // The bot files of the ConfigMap load with the secret the Secret provides.
    let map = of_kind(&docs, "ConfigMap")[0];
    assert_eq!(
        pod["spec"]["volumes"][0]["configMap"]["name"],
        map["metadata"]["name"]
    );
    let secret = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["valueFrom"]["secretKeyRef"].is_mapping())
        .unwrap();
    let secret_var = text(&secret["name"]).to_string();
    let header = read("examples/k8s/fleet-statefulset.yaml");
    let secret_name = text(&secret["valueFrom"]["secretKeyRef"]["name"]);
    let secret_key = text(&secret["valueFrom"]["secretKeyRef"]["key"]);
    assert!(
        header.contains(&format!("kubectl create secret generic {secret_name}"))
            && header.contains(&format!("--from-literal={secret_key}=")),
        "the header says how to create the Secret"
    );
    let fake =
        |var: &str| (var == secret_var).then(|| "0123456789abcdef0123456789abcdef".to_string());
    let mut users = 0;
    for (name, bot) in map["data"].as_mapping().unwrap() {
        let file = Path::new("/etc/zimfleet/fleet-bots").join(text(name));
        let def =
            zimfleet::runner::bots::parse_file(&file, text(bot), false, &fake, &Default::default())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .unwrap();
        users += def.accounts.len();
    }
    assert!(users as u64 > replicas, "more accounts than shards");
}

#[test]
fn the_load_test_jobs_run_the_same_image_with_their_shard_arguments() {
    let (tag, uid, _) = dockerfile();
    let docs = documents("examples/k8s/loadtest-job.yaml");
    let job = of_kind(&docs, "Job")[0];
    let completions = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(completions));
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(text(&container["image"]), tag);
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(uid));
    let env = env_values(container);
    assert_eq!(env["SHARDS"], completions.to_string());
    for index in 0..completions {
        let mut env = env.clone();
        env.insert("SHARD_INDEX".into(), index.to_string());
        let mut argv = vec!["zimfleet".to_string()];
        argv.extend(expand(&container["args"], &env));
        let parsed = Run::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let Command::Loadtest(args) = parsed.command else {
            panic!("not `zimfleet loadtest`")
        };
        assert_eq!(
            args.run.shard,
            Some(Shard {
                index: index as u32,
                count: completions as u32
            })
        );
    }
    let merge = documents("examples/k8s/loadtest-merge-job.yaml");
    let merge_container = &of_kind(&merge, "Job")[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(text(&merge_container["image"]), tag);
    let claim = &of_kind(&docs, "PersistentVolumeClaim")[0];
    assert_eq!(
        claim["spec"]["accessModes"][0], "ReadWriteMany",
        "every shard writes its report"
    );
}
