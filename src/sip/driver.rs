//! The tokio driver of the SIP endpoint (RFC 3261 §18 transports): binds the UDP and TCP
//! listen addresses, frames TCP streams by `Content-Length`, owns the clock, and runs the
//! drain loop of [`crate::sip`] over one [`Endpoint`]. The call layer talks to it through
//! a [`SipHandle`] (commands) and an event receiver; see the module doc of [`crate::sip`].
//!
//! Memory stays bounded: the channels are bounded (a slow consumer backs up into the
//! kernel's socket buffers, which drop), TCP frames over 64 KiB close the connection, and
//! the endpoint caps calls and transactions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::admission::Acl;
use super::endpoint::{CallCommand, CallEvent, CallId, Endpoint, EndpointConfig, Peer, Transport};
use super::message::MAX_MESSAGE;
use super::registration::RegistrationConfig;
use super::timer::TimerConfig;
use crate::config::Config;
use crate::sdp::LocalMedia;

const CHANNEL: usize = 8192;

enum Inbound {
    Message(Peer, Vec<u8>),
    Connected(SocketAddr, mpsc::Sender<Vec<u8>>),
    Disconnected(SocketAddr),
}

/// Commands into a running driver; cheap to clone.
#[derive(Debug, Clone)]
pub struct SipHandle {
    commands: mpsc::Sender<CallCommand>,
    stop: mpsc::Sender<()>,
    /// The bound UDP addresses (useful when a port 0 was asked for).
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
}

impl SipHandle {
    /// Sends a command; false when the driver has stopped.
    pub async fn command(&self, cmd: CallCommand) -> bool {
        self.commands.send(cmd).await.is_ok()
    }

    /// Asks the driver to stop (its task then ends).
    pub async fn stop(&self) {
        let _ = self.stop.send(()).await;
    }
}

/// Binds the sockets and starts the driver task. Port 0 binds an ephemeral port, which
/// the endpoint then writes into Via and Contact.
pub async fn spawn(
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    cfg: EndpointConfig,
) -> io::Result<(SipHandle, mpsc::Receiver<CallEvent>, JoinHandle<()>)> {
    spawn_with(udp, tcp, cfg, None).await
}

/// A call handler that runs inside the driver task: it sees every event at once and
/// queues commands, each due at an instant (no channel hop, no task switch). With one,
/// the event receiver of [`spawn_with`] gets nothing.
pub trait InlineHandler: Send + 'static {
    fn handle_event(
        &mut self,
        now: Instant,
        event: &CallEvent,
        commands: &mut Vec<(Instant, CallCommand)>,
    );
}

/// [`spawn`], optionally with an [`InlineHandler`] instead of the event channel.
pub async fn spawn_with(
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    mut cfg: EndpointConfig,
    handler: Option<Box<dyn InlineHandler>>,
) -> io::Result<(SipHandle, mpsc::Receiver<CallEvent>, JoinHandle<()>)> {
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(CHANNEL);
    let mut udp_sockets = Vec::new();
    for addr in udp {
        let s = Arc::new(UdpSocket::bind(addr).await?);
        udp_sockets.push(s);
    }
    let mut tcp_listeners = Vec::new();
    for addr in tcp {
        // Ask for the UDP port when TCP asks for port 0 next to a bound UDP socket.
        let mut want = *addr;
        if want.port() == 0 {
            if let Some(u) = udp_sockets
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .find(|u| u.ip() == want.ip())
            {
                want.set_port(u.port());
            }
        }
        let l = match TcpListener::bind(want).await {
            Ok(l) => l,
            Err(_) if want != *addr => TcpListener::bind(addr).await?,
            Err(e) => return Err(e),
        };
        tcp_listeners.push(l);
    }
    let udp_addrs: Vec<SocketAddr> = udp_sockets
        .iter()
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let tcp_addrs: Vec<SocketAddr> = tcp_listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    if let Some(a) = udp_addrs.first() {
        cfg.udp_port = a.port();
    }
    if let Some(a) = tcp_addrs.first() {
        cfg.tcp_port = a.port();
    } else {
        cfg.tcp_port = cfg.udp_port;
    }
    // The first UDP socket is read by the driver loop itself (no channel hop); others by
    // reader tasks.
    for s in udp_sockets.iter().skip(1) {
        tokio::spawn(udp_reader(s.clone(), in_tx.clone()));
    }
    for l in tcp_listeners {
        tokio::spawn(tcp_acceptor(l, in_tx.clone()));
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL);
    let (ev_tx, ev_rx) = mpsc::channel(CHANNEL);
    let (stop_tx, stop_rx) = mpsc::channel(1);
    let endpoint = Endpoint::new(Instant::now(), cfg);
    let channels = Channels {
        in_tx,
        inbound: in_rx,
        commands: cmd_rx,
        events: ev_tx,
        stop: stop_rx,
    };
    let task = tokio::spawn(run(endpoint, udp_sockets, channels, handler));
    Ok((
        SipHandle {
            commands: cmd_tx,
            stop: stop_tx,
            udp: udp_addrs,
            tcp: tcp_addrs,
        },
        ev_rx,
        task,
    ))
}

/// The driver task's channel ends.
struct Channels {
    in_tx: mpsc::Sender<Inbound>,
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::Receiver<CallCommand>,
    events: mpsc::Sender<CallEvent>,
    stop: mpsc::Receiver<()>,
}

async fn run(
    mut ep: Endpoint,
    udp: Vec<Arc<UdpSocket>>,
    ch: Channels,
    mut handler: Option<Box<dyn InlineHandler>>,
) {
    let Channels {
        in_tx,
        mut inbound,
        mut commands,
        events,
        mut stop,
    } = ch;
    // Commands an inline handler queued for later, in due order.
    let mut pending: VecDeque<(Instant, CallCommand)> = VecDeque::new();
    let mut queued: Vec<(Instant, CallCommand)> = Vec::new();
    let mut tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let family = |v4: bool| {
        udp.iter()
            .find(|s| s.local_addr().is_ok_and(|a| a.is_ipv4() == v4))
            .cloned()
    };
    let (udp_v4, udp_v6) = (
        family(true).or_else(|| udp.first().cloned()),
        family(false).or_else(|| udp.first().cloned()),
    );
    let primary = udp.first().cloned();
    let mut buf = vec![0u8; MAX_MESSAGE];
    ep.handle_timeout(Instant::now());
    loop {
        let deadline = match (ep.poll_timeout(), pending.front().map(|(t, _)| *t)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(tokio::time::Instant::from_std);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = readable(primary.as_deref()) => {
                // Take what is queued (bounded batch), one endpoint input per datagram.
                if let Some(sock) = &primary {
                    for _ in 0..64 {
                        match sock.try_recv_from(&mut buf) {
                            Ok((n, from)) => {
                                let peer = Peer { transport: Transport::Udp, addr: from };
                                ep.handle_input(Instant::now(), peer, &buf[..n]);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "udp recv");
                                break;
                            }
                        }
                    }
                }
            }
            msg = inbound.recv() => match msg {
                Some(Inbound::Message(peer, bytes)) => ep.handle_input(Instant::now(), peer, &bytes),
                Some(Inbound::Connected(addr, writer)) => { tcp.insert(addr, writer); }
                Some(Inbound::Disconnected(addr)) => { tcp.remove(&addr); }
                None => break,
            },
            cmd = commands.recv() => match cmd {
                Some(cmd) => {
                    ep.handle_command(Instant::now(), cmd);
                    for _ in 0..64 {
                        let Ok(cmd) = commands.try_recv() else { break };
                        ep.handle_command(Instant::now(), cmd);
                    }
                }
                None => break,
            },
            _ = sleep => ep.handle_timeout(Instant::now()),
            _ = stop.recv() => break,
        }
        // Drain until quiet: due commands, transmits, events (an inline handler's commands
        // produce more of both).
        loop {
            let now = Instant::now();
            while pending.front().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, cmd)) = pending.pop_front() {
                    ep.handle_command(now, cmd);
                }
            }
            let mut progressed = false;
            while let Some(t) = ep.poll_transmit() {
                progressed = true;
                match t.peer.transport {
                    Transport::Udp => {
                        let sock = if t.peer.addr.is_ipv4() {
                            &udp_v4
                        } else {
                            &udp_v6
                        };
                        if let Some(sock) = sock {
                            if let Err(e) = sock.try_send_to(&t.payload, t.peer.addr) {
                                if e.kind() == io::ErrorKind::WouldBlock {
                                    let _ = sock.send_to(&t.payload, t.peer.addr).await;
                                } else {
                                    tracing::debug!(peer = %t.peer.addr, error = %e, "udp send failed");
                                }
                            }
                        }
                    }
                    Transport::Tcp => match tcp.get(&t.peer.addr) {
                        Some(w) => {
                            if w.try_send(t.payload).is_err() {
                                metrics::counter!("voicenav_sip_dropped_total", "reason" => "tcp_backlog").increment(1);
                            }
                        }
                        None => {
                            tokio::spawn(tcp_connect(t.peer.addr, t.payload, in_tx.clone()));
                        }
                    },
                }
            }
            while let Some(e) = ep.poll_event() {
                progressed = true;
                match handler.as_mut() {
                    Some(h) => {
                        h.handle_event(now, &e, &mut queued);
                        for (at, cmd) in queued.drain(..) {
                            if at <= now {
                                ep.handle_command(now, cmd);
                            } else {
                                let i = pending.partition_point(|(t, _)| *t <= at);
                                pending.insert(i, (at, cmd));
                            }
                        }
                    }
                    None => {
                        // A closed receiver (nobody listens) is not an error: keep serving SIP.
                        let _ = events.send(e).await;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
}

/// Resolves when the socket has a datagram (never without a socket).
async fn readable(sock: Option<&UdpSocket>) {
    match sock {
        Some(s) => {
            if s.readable().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn udp_reader(sock: Arc<UdpSocket>, to: mpsc::Sender<Inbound>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let peer = Peer {
                    transport: Transport::Udp,
                    addr: from,
                };
                if to
                    .send(Inbound::Message(peer, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable and friends surface here on some systems; keep reading.
            Err(e) => tracing::debug!(error = %e, "udp recv"),
        }
    }
}

async fn tcp_acceptor(listener: TcpListener, to: mpsc::Sender<Inbound>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio::spawn(tcp_connection(stream, addr, to.clone(), None));
            }
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn tcp_connect(addr: SocketAddr, first: Vec<u8>, to: mpsc::Sender<Inbound>) {
    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => tcp_connection(stream, addr, to, Some(first)).await,
        _ => tracing::info!(peer = %addr, "tcp connect failed"),
    }
}

async fn tcp_connection(
    stream: TcpStream,
    addr: SocketAddr,
    to: mpsc::Sender<Inbound>,
    first: Option<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (w_tx, mut w_rx) = mpsc::channel::<Vec<u8>>(256);
    if let Some(f) = first {
        let _ = w_tx.try_send(f);
    }
    if to.send(Inbound::Connected(addr, w_tx)).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(bytes) = w_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let peer = Peer {
        transport: Transport::Tcp,
        addr,
    };
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match next_frame(&mut buf) {
                Frame::Incomplete => break,
                Frame::Message(m) => {
                    if to.send(Inbound::Message(peer, m)).await.is_err() {
                        break 'read;
                    }
                }
                Frame::Garbage(why) => {
                    metrics::counter!("voicenav_sip_dropped_total", "reason" => "tcp_framing")
                        .increment(1);
                    tracing::info!(peer = %addr, why, "closing TCP connection: cannot frame");
                    break 'read;
                }
            }
        }
    }
    // The writer ends by itself once the driver drops its sender (on Disconnected, after
    // any response already queued, e.g. to a peer that only half-closed) or a write fails.
    drop(writer);
    let _ = to.send(Inbound::Disconnected(addr)).await;
}

/// One step of TCP framing (RFC 3261 §18.3).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Incomplete,
    Message(Vec<u8>),
    /// The stream cannot be framed any more (no header end within 64 KiB, bad length).
    Garbage(&'static str),
}

/// Takes the next message off the front of `buf` (CRLF keep-alives are skipped).
pub fn next_frame(buf: &mut Vec<u8>) -> Frame {
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if skip > 0 {
        buf.drain(..skip);
    }
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Frame::Garbage("no end of headers")
        } else {
            Frame::Incomplete
        };
    };
    let body_start = head_end + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut len = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            match value.trim().parse::<usize>() {
                Ok(n) => len = Some(n),
                Err(_) => return Frame::Garbage("bad Content-Length"),
            }
        }
    }
    let len = len.unwrap_or(0);
    if body_start + len > MAX_MESSAGE {
        return Frame::Garbage("message too large");
    }
    if buf.len() < body_start + len {
        return Frame::Incomplete;
    }
    let rest = buf.split_off(body_start + len);
    let msg = std::mem::replace(buf, rest);
    Frame::Message(msg)
}

/// Builds the endpoint configuration from the server configuration: timers, advertised
/// host, limits, the ACL of all trunks (passwords from the environment) and the
/// registrations of trunks with a registrar.
pub fn endpoint_config(config: &Config) -> EndpointConfig {
    let raw = &config.raw;
    let mut rng = rand::rng();
    let first_listen = raw.sip.udp.first().or(raw.sip.tcp.first()).copied();
    let host = raw
        .sip
        .advertised_address
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| first_listen.map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut allow = Vec::new();
    let mut users = Vec::new();
    let mut registrations = Vec::new();
    let t1 = Duration::from_millis(raw.sip.timer_t1_ms.max(1));
    for trunk in &raw.trunks {
        allow.extend(trunk.allow.iter().copied());
        for u in &trunk.inbound_users {
            match std::env::var(&u.password_env) {
                Ok(pw) => users.push((u.username.clone(), pw)),
                Err(_) => tracing::warn!(
                    trunk = %trunk.name,
                    user = %u.username,
                    env = %u.password_env,
                    "inbound user has no password in the environment; ignored"
                ),
            }
        }
        if let Some(registrar) = &trunk.registrar {
            let addr = registrar.to_socket_addrs().ok().and_then(|mut a| a.next());
            let Some(addr) = addr else {
                tracing::warn!(trunk = %trunk.name, registrar, "registrar address does not resolve; not registering");
                continue;
            };
            let domain = registrar
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(registrar)
                .to_string();
            registrations.push(RegistrationConfig {
                trunk: trunk.name.clone(),
                registrar: addr,
                domain,
                username: trunk.username.clone().unwrap_or_else(|| "voicenav".into()),
                password: Config::secret(&trunk.name, trunk.password_env.as_deref()),
                expires: trunk.expires,
                backoff: (t1 * 4).max(Duration::from_millis(100)),
                max_backoff: Duration::from_secs(300),
            });
        }
    }
    let secret = format!("{:032x}", rng.random::<u128>());
    let algorithms = raw
        .sip
        .digest_algorithms
        .iter()
        .filter_map(|a| {
            let parsed = super::digest::Algorithm::parse(a);
            if parsed.is_none() {
                tracing::warn!(algorithm = %a, "unknown digest algorithm in sip.digest_algorithms; ignored");
            }
            parsed
        })
        .collect();
    EndpointConfig {
        timers: TimerConfig::with_t1(t1),
        host,
        udp_port: raw.sip.udp.first().map(|a| a.port()).unwrap_or(5060),
        tcp_port: raw.sip.tcp.first().map(|a| a.port()).unwrap_or(5060),
        user_agent: raw.sip.user_agent.clone(),
        max_calls: raw.limits.max_calls,
        max_calls_per_second: raw.limits.max_calls_per_second,
        max_transactions: raw.limits.max_calls.saturating_mul(64).max(10_000),
        acl: Acl::new(allow, users, "voicenav", &secret).with_algorithms(algorithms),
        registrations,
        transfer_timeout: t1 * 64,
        seed: rng.random(),
    }
}

/// Even RTP ports from a range, handed out round-robin and given back on `Closed`. Only
/// the numbers are reserved here; the media layer binds them.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    max: u16,
    next: u16,
    used: HashSet<u16>,
}

impl PortPool {
    pub fn new(min: u16, max: u16) -> PortPool {
        let min = min + (min % 2);
        PortPool {
            min,
            max: max.max(min),
            next: min,
            used: HashSet::new(),
        }
    }

    pub fn allocate(&mut self) -> Option<u16> {
        let slots = usize::from((self.max - self.min) / 2 + 1);
        for _ in 0..slots {
            let p = self.next;
            self.next = if p.saturating_add(2) > self.max {
                self.min
            } else {
                p + 2
            };
            if self.used.insert(p) {
                return Some(p);
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

/// The call handler of `voicenav serve` until the call layer (issue 10) takes over, run
/// inline in the driver: rings at once, answers after `answer_delay` with an RTP port
/// reserved from the configured range (503 when none is free), frees the port when the
/// call is closed, and logs keypad input and transfers.
#[derive(Debug)]
pub struct DefaultHandler {
    address: IpAddr,
    ports: PortPool,
    answer_delay: Duration,
    calls: HashMap<CallId, u16>,
}

impl DefaultHandler {
    pub fn new(address: IpAddr, ports: PortPool, answer_delay: Duration) -> DefaultHandler {
        DefaultHandler {
            address,
            ports,
            answer_delay,
            calls: HashMap::new(),
        }
    }
}

impl InlineHandler for DefaultHandler {
    fn handle_event(
        &mut self,
        now: Instant,
        event: &CallEvent,
        commands: &mut Vec<(Instant, CallCommand)>,
    ) {
        match event {
            CallEvent::Incoming { call, ani, .. } => match self.ports.allocate() {
                Some(port) => {
                    tracing::debug!(%call, ani, port, "answering");
                    self.calls.insert(call.clone(), port);
                    let media = LocalMedia {
                        address: self.address,
                        rtp_port: port,
                        session_id: rand::random::<u32>().into(),
                        version: 1,
                    };
                    commands.push((now, CallCommand::Ring { call: call.clone() }));
                    commands.push((
                        now + self.answer_delay,
                        CallCommand::Answer {
                            call: call.clone(),
                            media,
                        },
                    ));
                }
                None => {
                    tracing::warn!(%call, "no free RTP port: 503");
                    commands.push((
                        now,
                        CallCommand::Reject {
                            call: call.clone(),
                            code: 503,
                        },
                    ));
                }
            },
            CallEvent::Closed { call } => {
                if let Some(p) = self.calls.remove(call) {
                    self.ports.release(p);
                }
            }
            CallEvent::Dtmf { call, digit, .. } => tracing::info!(%call, %digit, "keypad"),
            other => tracing::debug!(event = ?other, "sip event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_framing_by_content_length() {
        let mut buf =
            b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcINFO sip:b SIP/2.0\r\nContent-Length: 2\r\n\r\nx"
                .to_vec();
        let Frame::Message(m) = next_frame(&mut buf) else {
            panic!("first frame")
        };
        assert!(m.starts_with(b"OPTIONS") && m.ends_with(b"\r\n\r\nabc"));
        assert_eq!(next_frame(&mut buf), Frame::Incomplete);
        buf.push(b'y');
        let Frame::Message(m) = next_frame(&mut buf) else {
            panic!("second frame")
        };
        assert!(m.ends_with(b"xy"));
        assert!(buf.is_empty());
        let mut bad = b"INFO sip:b SIP/2.0\r\nContent-Length: zz\r\n\r\n".to_vec();
        assert!(matches!(next_frame(&mut bad), Frame::Garbage(_)));
        let mut endless = vec![b'a'; MAX_MESSAGE + 1];
        assert!(matches!(next_frame(&mut endless), Frame::Garbage(_)));
    }

    #[test]
    fn port_pool_reuses_released_even_ports() {
        let mut p = PortPool::new(20000, 20004);
        assert_eq!(
            (p.allocate(), p.allocate(), p.allocate()),
            (Some(20000), Some(20002), Some(20004))
        );
        assert_eq!(p.allocate(), None);
        p.release(20002);
        assert_eq!(p.allocate(), Some(20002));
    }
}
