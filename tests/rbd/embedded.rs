//! The embedded store itself: which store a name selects, and the
//! README's first command in a freshly cloned checkout with no Ceph.

use std::path::Path;
use std::process::Command;

use crate::util::{Outcome, RBDIMG};

/// rbdimg in `cwd` with a clean environment: HOME and XDG_DATA_HOME in
/// `home`, no Ceph or store variables unless `env` sets them.
fn isolated(cwd: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let mut cmd = Command::new(RBDIMG);
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("xdg"))
        .env_remove("CEPH_CONF")
        .env_remove("RBDIMG_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rbdimg").into()
}

fn store_of(out: &Outcome) -> String {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    v["format-specific"]["data"]["store"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn names_select_the_store_with_no_surprise() {
    let home = tempfile::tempdir().unwrap();
    let cwd = home.path();
    let info = ["info", "-f", "rbd", "--output=json"];
    let run = |env: &[(&str, &str)], name: &str| {
        let mut args = info.to_vec();
        args.push(name);
        isolated(cwd, home.path(), env, &args)
    };
    // No Ceph configuration: the XDG data directory, pool made by create.
    let out = isolated(cwd, home.path(), &[], &["create", "rbd:rbd/a", "1M"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let default = home.path().join("xdg/rbdimg");
    assert_eq!(
        store_of(&run(&[], "rbd:rbd/a")),
        format!("embedded:{}", default.display())
    );
    assert!(default.join("store.db").is_file());
    // Without XDG_DATA_HOME: ~/.local/share/rbdimg.
    let out = Command::new(RBDIMG)
        .args(["create", "rbd:p2/b", "1M"])
        .current_dir(cwd)
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("CEPH_CONF")
        .env_remove("RBDIMG_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(home.path().join(".local/share/rbdimg/store.db").is_file());
    // RBDIMG_STORE and store= override it; store= wins.
    let elsewhere = home.path().join("elsewhere");
    let env_store = [("RBDIMG_STORE", elsewhere.to_str().unwrap())];
    assert_eq!(run(&env_store, "rbd:rbd/a").code, 1, "image is not there");
    isolated(cwd, home.path(), &env_store, &["create", "rbd:rbd/c", "1M"]);
    assert_eq!(
        store_of(&run(&env_store, "rbd:rbd/c")),
        format!("embedded:{}", elsewhere.display())
    );
    let named = format!("rbd:rbd/a:store={}", default.display());
    assert_eq!(run(&env_store, &named).code, 0);
    // store= with Ceph settings is a contradiction.
    let out = run(&[], &format!("{named}:mon_host=127.0.0.1"));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot be combined"), "{}", out.stderr);
    // json: and --image-opts take `store` too.
    let json = format!(
        r#"json:{{"driver":"rbd","pool":"rbd","image":"c","store":"{}"}}"#,
        elsewhere.display()
    );
    assert_eq!(run(&[], &json).code, 0);
    let opts = format!("driver=rbd,pool=rbd,image=c,store={}", elsewhere.display());
    let out = isolated(cwd, home.path(), &[], &["info", "--image-opts", &opts]);
    assert_eq!(out.code, 0, "{out:#?}");
    // Any Ceph configuration means the cluster, never local data: here an
    // unreachable one is an error.
    let conf = home.path().join("ceph.conf");
    std::fs::write(
        &conf,
        "[global]\nmon_host = 127.0.0.1:1\nclient_mount_timeout = 1\n",
    )
    .unwrap();
    for env in [
        vec![("CEPH_CONF", conf.to_str().unwrap())],
        vec![
            ("CEPH_CONF", conf.to_str().unwrap()),
            ("RBDIMG_STORE", elsewhere.to_str().unwrap()),
        ],
    ] {
        let out = run(&env, "rbd:rbd/c");
        assert_eq!(out.code, 1, "{env:?}: {out:#?}");
        assert!(!out.stderr.contains("embedded"), "{}", out.stderr);
    }
    // ./ceph.conf in the working directory counts as configuration too.
    let out = run(&[], "rbd:rbd/a");
    assert_eq!(out.code, 1, "{out:#?}");
    std::fs::remove_file(&conf).unwrap();
    assert_eq!(run(&[], "rbd:rbd/a").code, 0);
}

#[test]
fn an_empty_store_setting_is_an_error_not_the_default() {
    let home = tempfile::tempdir().unwrap();
    let cwd = home.path();
    let out = isolated(
        cwd,
        home.path(),
        &[("RBDIMG_STORE", "")],
        &["info", "rbd:rbd/a"],
    );
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "rbdimg: Could not open 'rbd:rbd/a': RBDIMG_STORE is set but empty: \
             set it to the embedded store's directory, or unset it\n"
        )
    );
    let out = isolated(cwd, home.path(), &[], &["create", "rbd:rbd/a:store=", "1M"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .ends_with("store= needs the embedded store's directory\n"),
        "{}",
        out.stderr
    );
    // Nothing fell back to the default place.
    assert!(!home.path().join("xdg").exists());
}

/// The README's first command, from a `git clone` of this checkout, with no
/// Ceph configuration anywhere. The build shares a target directory kept
/// beside the test binary's, so only the first run compiles from scratch.
#[test]
fn readme_first_command_works_in_a_fresh_clone() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let command = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("a sh block in README.md")
        .to_string();
    assert!(command.contains("rbd:rbd/vm1"), "{command}");
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("rbdimg");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo)
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Uncommitted work in this checkout is what is being tested.
    for file in ["README.md", "Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo.join(file), clone.join(file)).unwrap();
    }
    let status = Command::new("rsync")
        .args(["-a", "--delete"])
        .arg(repo.join("src/"))
        .arg(clone.join("src/"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        let _ = Command::new("cp")
            .arg("-r")
            .arg(repo.join("src/."))
            .arg(clone.join("src"))
            .status();
    }
    let shared_target = Path::new(RBDIMG)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("readme-clone");
    std::fs::create_dir_all(&shared_target).unwrap();
    std::os::unix::fs::symlink(&shared_target, clone.join("target")).unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .current_dir(&clone)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("CEPH_CONF")
        .env_remove("RBDIMG_STORE")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sp0"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "store: embedded:{}",
            home.join("data/rbdimg").display()
        )),
        "{stdout}"
    );
    assert!(home.join("data/rbdimg/store.db").is_file());
}
