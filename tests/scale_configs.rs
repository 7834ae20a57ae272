//! The node configurations of `docker/docker-compose.scale.yml` load, share Redis, do not
//! collide on ports, and are exactly the nodes Kamailio's dispatcher list names.

use std::collections::BTreeSet;
use std::path::Path;

use voicenav::config::Config;

#[test]
fn scale_node_configs_match_the_dispatcher_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join("docker/kamailio/dispatcher.list")).unwrap();
    let mut listed: BTreeSet<u16> = BTreeSet::new();
    for line in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let uri = line.split_whitespace().nth(1).expect("setid destination");
        let port = uri
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .expect("destination port");
        listed.insert(port);
    }
    let mut sip_ports = BTreeSet::new();
    let mut http_ports = BTreeSet::new();
    let mut rtp: Vec<(u16, u16)> = Vec::new();
    for node in ["a", "b"] {
        let cfg = Config::load(&root.join(format!("docker/scale/voicenav-{node}.yaml"))).unwrap();
        assert_eq!(
            cfg.raw.continuity.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379/"),
            "node {node}"
        );
        sip_ports.insert(cfg.raw.sip.udp[0].port());
        http_ports.insert(cfg.raw.http.listen.port());
        rtp.push((cfg.raw.rtp.port_min, cfg.raw.rtp.port_max));
    }
    assert_eq!(
        sip_ports, listed,
        "dispatcher.list and the node configs disagree"
    );
    assert_eq!(http_ports.len(), 2);
    assert!(
        rtp[0].1 < rtp[1].0 || rtp[1].1 < rtp[0].0,
        "RTP ranges overlap: {rtp:?}"
    );
}
