//! STARTTLS preambles: the plaintext exchange that upgrades a connection to TLS, for the
//! servers around a Lync estate (Exchange SMTP, AD LDAP, XMPP gateways, mail clients' IMAP and
//! POP3, the SQL back ends, FTP, ManageSieve, NNTP).
//!
//! Each preamble follows its RFC and stops at the point where the server expects a
//! ClientHello. Everything the server says is hostile input: lines are bounded
//! ([`MAX_LINE`]), the whole preamble is bounded ([`MAX_PREAMBLE`]) and every step shares one
//! deadline. A server that sends bytes after its "go ahead" answer (before our ClientHello) is
//! refused: that is the STARTTLS command-injection pattern (CVE-2011-0411 and its kin).
//!
//! Failures are typed: `starttls_unsupported` (the capability is not offered),
//! `starttls_refused` (the server said no), `starttls_protocol` (an unexpected reply), and
//! `not_tls` is not used here — a port that speaks another protocol gives `starttls_protocol`
//! with the reply in the detail. Reply codes go to the detail, never to a label.
//!
//! Size: about 890 lines of code and 40 of tests, twelve protocol preambles side by side (each a short state machine
//! over the same bounded line/record readers); splitting per protocol would scatter the shared
//! readers' bounds.

use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::reason::{Failure, FailureReason};

/// Longest line accepted from a server.
pub const MAX_LINE: usize = 4096;
/// Most bytes read during one preamble.
pub const MAX_PREAMBLE: usize = 64 * 1024;
/// Most capability lines kept for the report.
const MAX_CAPABILITIES: usize = 64;
/// Longest reported banner or capability text.
const MAX_TEXT: usize = 256;

pub use crate::vocab::StartTls;

impl StartTls {
    /// The protocol's usual STARTTLS port, used when an endpoint gives none.
    pub fn default_port(self) -> u16 {
        match self {
            StartTls::Smtp => 25,
            StartTls::Lmtp => 24,
            StartTls::Imap => 143,
            StartTls::Pop3 => 110,
            StartTls::Ftp => 21,
            StartTls::Ldap => 389,
            StartTls::XmppClient => 5222,
            StartTls::XmppServer => 5269,
            StartTls::Postgres => 5432,
            StartTls::Mysql => 3306,
            StartTls::Sieve => 4190,
            StartTls::Nntp => 119,
        }
    }
}

/// What the preamble needs besides the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTlsSpec {
    pub protocol: StartTls,
    /// SMTP EHLO / LMTP LHLO name (default `certprobe.invalid`).
    pub hello_name: String,
    /// XMPP stream `to=` domain (default: the SNI, else the host).
    pub xmpp_domain: Option<String>,
}

impl StartTlsSpec {
    pub fn new(protocol: StartTls) -> Self {
        Self {
            protocol,
            hello_name: "certprobe.invalid".into(),
            xmpp_domain: None,
        }
    }
}

/// Facts an operator checks, from the plaintext part of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StartTlsFacts {
    pub protocol: Option<StartTls>,
    /// The server's greeting (first line, bounded, control characters replaced).
    pub banner: Option<String>,
    /// The name we greeted with (SMTP EHLO / LMTP LHLO).
    pub hello_name: Option<String>,
    /// Capabilities the server listed (SMTP EHLO keywords, IMAP/POP3/NNTP/Sieve capabilities).
    pub capabilities: Vec<String>,
    /// XMPP: the stream header's `from` domain.
    pub xmpp_from: Option<String>,
    /// XMPP server-to-server: the stream features offer dialback.
    pub xmpp_dialback: bool,
    /// XMPP: SASL EXTERNAL is offered (certificate-based authentication).
    pub xmpp_sasl_external: bool,
    /// MySQL / PostgreSQL: the server's version as it announced it (MySQL greeting).
    pub server_version: Option<String>,
}

/// A server string for the report: at most [`MAX_TEXT`] characters, controls escaped.
fn clean(s: &str) -> String {
    crate::text::bounded(s, MAX_TEXT)
}

fn unsupported(detail: String) -> Failure {
    Failure::new(FailureReason::StarttlsUnsupported, detail)
}
fn refused(detail: String) -> Failure {
    Failure::new(FailureReason::StarttlsRefused, detail)
}
fn protocol(detail: String) -> Failure {
    Failure::new(FailureReason::StarttlsProtocol, detail)
}

/// A bounded plaintext conversation with a deadline.
struct Conv<'a> {
    tcp: &'a mut TcpStream,
    buf: Vec<u8>,
    read_total: usize,
    deadline: Instant,
    proto: StartTls,
}

impl Conv<'_> {
    async fn fill(&mut self) -> Result<(), Failure> {
        if self.read_total >= MAX_PREAMBLE {
            return Err(protocol(format!(
                "{}: the server sent more than {MAX_PREAMBLE} bytes before TLS",
                self.proto
            )));
        }
        let mut chunk = [0u8; 2048];
        let want = chunk.len().min(MAX_PREAMBLE - self.read_total);
        match tokio::time::timeout_at(self.deadline, self.tcp.read(&mut chunk[..want])).await {
            Err(_) => Err(Failure::new(
                FailureReason::HandshakeTimeout,
                format!(
                    "{}: the server did not answer in time during STARTTLS",
                    self.proto
                ),
            )),
            Ok(Ok(0)) => Err(protocol(format!(
                "{}: the server closed the connection during the STARTTLS preamble",
                self.proto
            ))),
            Ok(Ok(n)) => {
                self.read_total += n;
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(protocol(format!(
                "{}: read error during the STARTTLS preamble: {e}",
                self.proto
            ))),
        }
    }

    /// One line (without CRLF/LF), bounded by [`MAX_LINE`].
    async fn line(&mut self) -> Result<String, Failure> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err(protocol(format!(
                    "{}: a line from the server is longer than {MAX_LINE} bytes",
                    self.proto
                )));
            }
            self.fill().await?;
        }
    }

    /// Exactly `n` bytes.
    async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Failure> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Read until `marker` appears (XMPP), returning everything up to and including it.
    async fn until(&mut self, marker: &str) -> Result<String, Failure> {
        let m = marker.as_bytes();
        loop {
            if let Some(i) = self.buf.windows(m.len()).position(|w| w == m) {
                let bytes: Vec<u8> = self.buf.drain(..i + m.len()).collect();
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        match tokio::time::timeout_at(self.deadline, self.tcp.write_all(bytes)).await {
            Err(_) => Err(Failure::new(
                FailureReason::HandshakeTimeout,
                format!("{}: could not send within the timeout", self.proto),
            )),
            Ok(Err(e)) => Err(protocol(format!(
                "{}: write error during the STARTTLS preamble: {e}",
                self.proto
            ))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The server must be silent between its "go ahead" and our ClientHello.
    fn nothing_pending(&self) -> Result<(), Failure> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(protocol(format!(
                "{}: the server sent {} unexpected byte(s) after accepting STARTTLS (possible command injection)",
                self.proto,
                self.buf.len()
            )))
        }
    }

    /// A numeric multi-line reply (SMTP, LMTP, FTP, NNTP use `ddd-` continuation lines and a
    /// final `ddd ` line): (code, lines' text after the code).
    async fn reply(&mut self) -> Result<(u16, Vec<String>), Failure> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| {
                    protocol(format!(
                        "{}: unexpected reply {:?} (not a numeric reply line)",
                        self.proto,
                        clean(&line)
                    ))
                })?;
            let sep = line.as_bytes().get(3).copied();
            let text = line.get(4..).unwrap_or("").to_string();
            if lines.len() < 256 {
                lines.push(text);
            } else {
                return Err(protocol(format!(
                    "{}: a reply of more than 256 lines",
                    self.proto
                )));
            }
            match sep {
                Some(b'-') => continue,
                Some(b' ') | None => return Ok((code, lines)),
                _ => {
                    return Err(protocol(format!(
                        "{}: malformed reply line {:?}",
                        self.proto,
                        clean(&line)
                    )))
                }
            }
        }
    }
}

/// Run the preamble on a connected socket. On success the server expects a ClientHello next.
pub async fn negotiate(
    tcp: &mut TcpStream,
    spec: &StartTlsSpec,
    domain: &str,
    limit: Duration,
) -> Result<StartTlsFacts, Failure> {
    let proto = spec.protocol;
    let mut c = Conv {
        tcp,
        buf: Vec::new(),
        read_total: 0,
        deadline: Instant::now() + limit,
        proto,
    };
    let mut facts = StartTlsFacts {
        protocol: Some(proto),
        ..Default::default()
    };
    match proto {
        StartTls::Smtp | StartTls::Lmtp => smtp(&mut c, spec, &mut facts).await?,
        StartTls::Imap => imap(&mut c, &mut facts).await?,
        StartTls::Pop3 => pop3(&mut c, &mut facts).await?,
        StartTls::Ftp => ftp(&mut c, &mut facts).await?,
        StartTls::Nntp => nntp(&mut c, &mut facts).await?,
        StartTls::Sieve => sieve(&mut c, &mut facts).await?,
        StartTls::Ldap => ldap(&mut c).await?,
        StartTls::XmppClient | StartTls::XmppServer => {
            let to = spec.xmpp_domain.as_deref().unwrap_or(domain);
            xmpp(&mut c, to, &mut facts).await?
        }
        StartTls::Postgres => postgres(&mut c).await?,
        StartTls::Mysql => mysql(&mut c, &mut facts).await?,
    }
    c.nothing_pending()?;
    Ok(facts)
}

fn keep_capability(facts: &mut StartTlsFacts, cap: &str) {
    if facts.capabilities.len() < MAX_CAPABILITIES && !cap.trim().is_empty() {
        facts.capabilities.push(clean(cap.trim()));
    }
}

/// RFC 3207 (SMTP) / RFC 2033 (LMTP): 220 greeting, EHLO/LHLO, 250 with STARTTLS, STARTTLS, 220.
async fn smtp(
    c: &mut Conv<'_>,
    spec: &StartTlsSpec,
    facts: &mut StartTlsFacts,
) -> Result<(), Failure> {
    let (code, lines) = c.reply().await?;
    facts.banner = lines.first().map(|l| clean(l));
    if code != 220 {
        return Err(if (400..600).contains(&code) {
            refused(format!(
                "{}: the server greeted with {code} {}",
                c.proto,
                clean(&lines.join(" "))
            ))
        } else {
            protocol(format!("{}: unexpected greeting {code}", c.proto))
        });
    }
    let verb = if c.proto == StartTls::Lmtp {
        "LHLO"
    } else {
        "EHLO"
    };
    c.send(format!("{verb} {}\r\n", spec.hello_name).as_bytes())
        .await?;
    facts.hello_name = Some(spec.hello_name.clone());
    let (code, lines) = c.reply().await?;
    if code != 250 {
        return Err(refused(format!("{}: {verb} answered {code}", c.proto)));
    }
    for l in lines.iter().skip(1) {
        keep_capability(facts, l);
    }
    if !lines
        .iter()
        .skip(1)
        .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"))
    {
        return Err(unsupported(format!(
            "{}: the server does not offer STARTTLS in its {verb} answer",
            c.proto
        )));
    }
    c.send(b"STARTTLS\r\n").await?;
    let (code, lines) = c.reply().await?;
    if code != 220 {
        return Err(refused(format!(
            "{}: STARTTLS answered {code} {}",
            c.proto,
            clean(&lines.join(" "))
        )));
    }
    Ok(())
}

/// RFC 3501 / 9051: `* OK` greeting, CAPABILITY, STARTTLS, tagged OK.
async fn imap(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let greeting = c.line().await?;
    facts.banner = Some(clean(&greeting));
    if greeting.starts_with("* BYE") {
        return Err(refused(format!(
            "imap: the server said {:?}",
            clean(&greeting)
        )));
    }
    if !greeting.starts_with("* OK") {
        return Err(protocol(format!(
            "imap: unexpected greeting {:?}",
            clean(&greeting)
        )));
    }
    c.send(b"cp1 CAPABILITY\r\n").await?;
    let mut caps = Vec::new();
    loop {
        let line = c.line().await?;
        if let Some(rest) = line.strip_prefix("* CAPABILITY ") {
            caps.extend(rest.split_whitespace().map(str::to_string));
        } else if line.starts_with("cp1 ") {
            if !line.starts_with("cp1 OK") {
                return Err(protocol(format!(
                    "imap: CAPABILITY answered {:?}",
                    clean(&line)
                )));
            }
            break;
        } else if !line.starts_with('*') {
            return Err(protocol(format!(
                "imap: unexpected line {:?}",
                clean(&line)
            )));
        }
    }
    for cap in &caps {
        keep_capability(facts, cap);
    }
    if !caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) {
        return Err(unsupported(
            "imap: STARTTLS is not among the capabilities".into(),
        ));
    }
    c.send(b"cp2 STARTTLS\r\n").await?;
    loop {
        let line = c.line().await?;
        if line.starts_with("cp2 OK") {
            return Ok(());
        }
        if line.starts_with("cp2 ") {
            return Err(refused(format!(
                "imap: STARTTLS answered {:?}",
                clean(&line)
            )));
        }
        if !line.starts_with('*') {
            return Err(protocol(format!(
                "imap: unexpected line {:?}",
                clean(&line)
            )));
        }
    }
}

/// RFC 2595: `+OK` greeting, CAPA (multi-line, `.`), STLS, `+OK`.
async fn pop3(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let greeting = c.line().await?;
    facts.banner = Some(clean(&greeting));
    if !greeting.starts_with("+OK") {
        return Err(if greeting.starts_with("-ERR") {
            refused(format!("pop3: the server said {:?}", clean(&greeting)))
        } else {
            protocol(format!("pop3: unexpected greeting {:?}", clean(&greeting)))
        });
    }
    c.send(b"CAPA\r\n").await?;
    let first = c.line().await?;
    let mut caps = Vec::new();
    if first.starts_with("+OK") {
        loop {
            let line = c.line().await?;
            if line == "." {
                break;
            }
            if caps.len() >= 256 {
                return Err(protocol("pop3: CAPA listed more than 256 lines".into()));
            }
            caps.push(line);
        }
    }
    for cap in &caps {
        keep_capability(facts, cap);
    }
    if !caps.iter().any(|l| l.trim().eq_ignore_ascii_case("STLS")) {
        return Err(unsupported(
            "pop3: STLS is not among the capabilities".into(),
        ));
    }
    c.send(b"STLS\r\n").await?;
    let line = c.line().await?;
    if !line.starts_with("+OK") {
        return Err(refused(format!("pop3: STLS answered {:?}", clean(&line))));
    }
    Ok(())
}

/// RFC 4217: 220 greeting, AUTH TLS, 234.
async fn ftp(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let (code, lines) = c.reply().await?;
    facts.banner = lines.first().map(|l| clean(l));
    if code != 220 {
        return Err(refused(format!("ftp: the server greeted with {code}")));
    }
    c.send(b"AUTH TLS\r\n").await?;
    let (code, lines) = c.reply().await?;
    match code {
        234 => Ok(()),
        500 | 502 | 504 => Err(unsupported(format!(
            "ftp: AUTH TLS answered {code} {}",
            clean(&lines.join(" "))
        ))),
        _ => Err(refused(format!(
            "ftp: AUTH TLS answered {code} {}",
            clean(&lines.join(" "))
        ))),
    }
}

/// RFC 4642: 200/201 greeting, CAPABILITIES (101, multi-line `.`), STARTTLS, 382.
async fn nntp(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let (code, lines) = c.reply().await?;
    facts.banner = lines.first().map(|l| clean(l));
    if code != 200 && code != 201 {
        return Err(refused(format!("nntp: the server greeted with {code}")));
    }
    let mut caps = nntp_capabilities(c).await?;
    // A mode-switching server (innd) lists MODE-READER and offers STARTTLS only to the reader
    // it hands the connection to (RFC 4642 §2.2; RFC 3977 §5.3): switch, then ask again, as a
    // newsreader does.
    let has =
        |caps: &[String], want: &str| caps.iter().any(|l| l.trim().eq_ignore_ascii_case(want));
    if !has(&caps, "STARTTLS") && has(&caps, "MODE-READER") {
        c.send(b"MODE READER\r\n").await?;
        let (code, _) = c.reply().await?;
        if code != 200 && code != 201 {
            return Err(refused(format!("nntp: MODE READER answered {code}")));
        }
        caps = nntp_capabilities(c).await?;
    }
    for cap in &caps {
        keep_capability(facts, cap);
    }
    if !has(&caps, "STARTTLS") {
        return Err(unsupported(
            "nntp: STARTTLS is not among the capabilities".into(),
        ));
    }
    c.send(b"STARTTLS\r\n").await?;
    let (code, _) = c.reply().await?;
    if code != 382 {
        return Err(refused(format!("nntp: STARTTLS answered {code}")));
    }
    Ok(())
}

/// `CAPABILITIES` and its dot-terminated list (at most 256 lines); empty when the server does
/// not know the command.
async fn nntp_capabilities(c: &mut Conv<'_>) -> Result<Vec<String>, Failure> {
    c.send(b"CAPABILITIES\r\n").await?;
    let (code, _) = c.reply().await?;
    let mut caps = Vec::new();
    if code == 101 {
        loop {
            let line = c.line().await?;
            if line == "." {
                break;
            }
            if caps.len() >= 256 {
                return Err(protocol(
                    "nntp: CAPABILITIES listed more than 256 lines".into(),
                ));
            }
            caps.push(line);
        }
    }
    Ok(caps)
}

/// RFC 5804 (ManageSieve): capability lines on connect ending with `OK`, STARTTLS, `OK`.
async fn sieve(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let mut starttls = false;
    let mut n = 0;
    loop {
        let line = c.line().await?;
        n += 1;
        if n > 256 {
            return Err(protocol("sieve: more than 256 capability lines".into()));
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("OK") {
            break;
        }
        if upper.starts_with("NO") || upper.starts_with("BYE") {
            return Err(refused(format!(
                "sieve: the server said {:?}",
                clean(&line)
            )));
        }
        if !line.starts_with('"') {
            return Err(protocol(format!(
                "sieve: unexpected line {:?}",
                clean(&line)
            )));
        }
        if upper.starts_with("\"IMPLEMENTATION\"") {
            facts.banner = Some(clean(&line));
        }
        if upper.trim() == "\"STARTTLS\"" {
            starttls = true;
        }
        keep_capability(facts, &line);
    }
    if !starttls {
        return Err(unsupported(
            "sieve: STARTTLS is not among the capabilities".into(),
        ));
    }
    c.send(b"STARTTLS\r\n").await?;
    let line = c.line().await?;
    if !line.to_ascii_uppercase().starts_with("OK") {
        return Err(refused(format!(
            "sieve: STARTTLS answered {:?}",
            clean(&line)
        )));
    }
    Ok(())
}

/// RFC 4511 4.14: ExtendedRequest 1.3.6.1.4.1.1466.20037, ExtendedResponse resultCode 0.
async fn ldap(c: &mut Conv<'_>) -> Result<(), Failure> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    // LDAPMessage ::= SEQUENCE { messageID 1, extendedReq [APPLICATION 23] SEQUENCE {
    //   requestName [0] LDAPOID } }
    let mut req = vec![0x30, (3 + 2 + 2 + OID.len()) as u8, 0x02, 0x01, 0x01];
    req.extend_from_slice(&[0x77, (2 + OID.len()) as u8, 0x80, OID.len() as u8]);
    req.extend_from_slice(OID);
    c.send(&req).await?;
    // The response: SEQUENCE, length (short or long form), then messageID, then
    // [APPLICATION 24] ExtendedResponse whose first element is the ENUMERATED resultCode.
    let head = c.bytes(2).await?;
    if head[0] != 0x30 {
        return Err(protocol(format!(
            "ldap: the answer is not an LDAP message (first byte 0x{:02x})",
            head[0]
        )));
    }
    let len = match head[1] {
        n if n < 0x80 => usize::from(n),
        0x81 => usize::from(c.bytes(1).await?[0]),
        0x82 => {
            let b = c.bytes(2).await?;
            usize::from(u16::from_be_bytes([b[0], b[1]]))
        }
        _ => {
            return Err(protocol(
                "ldap: unsupported BER length in the answer".into(),
            ))
        }
    };
    if len > MAX_LINE {
        return Err(protocol(format!("ldap: an answer of {len} bytes")));
    }
    let body = c.bytes(len).await?;
    let result = ldap_result_code(&body).ok_or_else(|| {
        protocol("ldap: the answer is not an ExtendedResponse with a result code".into())
    })?;
    match result {
        0 => Ok(()),
        // protocolError (2): the extended operation is unknown to the server.
        2 => Err(unsupported(
            "ldap: the server does not support the StartTLS extended operation (protocolError)"
                .into(),
        )),
        code => Err(refused(format!(
            "ldap: StartTLS answered resultCode {code}"
        ))),
    }
}

/// messageID INTEGER, then [APPLICATION 24] { resultCode ENUMERATED, ... }.
fn ldap_result_code(body: &[u8]) -> Option<u8> {
    let [0x02, id_len, rest @ ..] = body else {
        return None;
    };
    let rest = rest.get(usize::from(*id_len)..)?;
    let [0x78, l0, rest @ ..] = rest else {
        return None;
    };
    let rest = match *l0 {
        n if n < 0x80 => rest,
        0x81 => rest.get(1..)?,
        0x82 => rest.get(2..)?,
        _ => return None,
    };
    match rest {
        [0x0a, 1, code, ..] => Some(*code),
        _ => None,
    }
}

/// RFC 6120: stream header, features with `<starttls/>`, `<starttls/>`, `<proceed/>`.
async fn xmpp(c: &mut Conv<'_>, to: &str, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    let ns = if c.proto == StartTls::XmppServer {
        "jabber:server"
    } else {
        "jabber:client"
    };
    let to: String = to
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
        .collect();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
    );
    c.send(header.as_bytes()).await?;
    let text = c.until("</stream:features>").await.map_err(|f| {
        if f.reason == FailureReason::StarttlsProtocol {
            protocol(format!("xmpp: no stream features ({})", f.detail))
        } else {
            f
        }
    })?;
    if !text.contains("<stream:stream") {
        return Err(protocol("xmpp: the server sent no stream header".into()));
    }
    facts.xmpp_from = attr(&text, "from").map(|s| clean(&s));
    facts.banner = facts.xmpp_from.clone();
    facts.xmpp_dialback = text.contains("urn:xmpp:features:dialback");
    facts.xmpp_sasl_external = text.contains("<mechanism>EXTERNAL</mechanism>");
    if !text.contains("urn:ietf:params:xml:ns:xmpp-tls") {
        return Err(unsupported(
            "xmpp: the stream features do not offer starttls".into(),
        ));
    }
    c.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    let answer = c.until(">").await?;
    if answer.contains("<proceed") {
        // `<proceed .../>` may close itself or come with a closing tag in the same packet.
        if answer.trim_end().ends_with("/>") || answer.contains("</proceed") {
            return Ok(());
        }
        let _ = c.until("</proceed>").await?;
        return Ok(());
    }
    if answer.contains("<failure") {
        return Err(refused(
            "xmpp: the server answered <failure/> to starttls".into(),
        ));
    }
    Err(protocol(format!(
        "xmpp: unexpected answer {:?}",
        clean(&answer)
    )))
}

/// The value of `name='…'` or `name="…"` in the stream header.
fn attr(text: &str, name: &str) -> Option<String> {
    let header = &text[text.find("<stream:stream")?..];
    let header = &header[..header.find('>')?];
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(i) = header.find(&key) {
            let rest = &header[i + key.len()..];
            return rest.find(quote).map(|j| rest[..j].to_string());
        }
    }
    None
}

/// PostgreSQL SSLRequest: Int32(8) Int32(80877103); the answer is one byte, `S` or `N`.
async fn postgres(c: &mut Conv<'_>) -> Result<(), Failure> {
    c.send(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await?;
    match c.bytes(1).await?[0] {
        b'S' => Ok(()),
        b'N' => Err(refused(
            "postgres: the server answered N to SSLRequest (TLS off)".into(),
        )),
        b'E' => Err(protocol(
            "postgres: the server answered SSLRequest with an error message".into(),
        )),
        other => Err(protocol(format!(
            "postgres: unexpected answer byte 0x{other:02x} to SSLRequest"
        ))),
    }
}

/// MySQL / MariaDB: the server's greeting (HandshakeV10) advertises CLIENT_SSL; the client
/// answers with an SSLRequest packet and starts TLS.
async fn mysql(c: &mut Conv<'_>, facts: &mut StartTlsFacts) -> Result<(), Failure> {
    const CLIENT_SSL: u32 = 0x0800;
    const CLIENT_PROTOCOL_41: u32 = 0x0200;
    const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
    const CLIENT_LONG_PASSWORD: u32 = 0x0001;
    let head = c.bytes(4).await?;
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    if len > MAX_LINE * 4 {
        return Err(protocol(format!("mysql: a greeting of {len} bytes")));
    }
    let body = c.bytes(len).await?;
    match body.first() {
        Some(10) => {}
        Some(0xff) => {
            let msg = String::from_utf8_lossy(body.get(3..).unwrap_or(&[])).into_owned();
            return Err(refused(format!(
                "mysql: the server refused the connection: {}",
                clean(&msg)
            )));
        }
        _ => return Err(protocol("mysql: not a MySQL protocol 10 greeting".into())),
    }
    let nul = body[1..]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| protocol("mysql: malformed greeting".into()))?;
    facts.server_version = Some(clean(&String::from_utf8_lossy(&body[1..1 + nul])));
    facts.banner = facts.server_version.clone();
    // version NUL, connection id (4), auth data part 1 (8), filler (1), capabilities (2).
    let at = 1 + nul + 1 + 4 + 8 + 1;
    let caps = body
        .get(at..at + 2)
        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| protocol("mysql: greeting without capability flags".into()))?;
    if caps & CLIENT_SSL == 0 {
        return Err(unsupported(
            "mysql: the server does not offer SSL (CLIENT_SSL not set)".into(),
        ));
    }
    let flags = CLIENT_SSL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_LONG_PASSWORD;
    let mut payload = Vec::with_capacity(32);
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    payload.push(33); // utf8_general_ci
    payload.extend_from_slice(&[0u8; 23]);
    let mut packet = vec![payload.len() as u8, 0, 0, head[3].wrapping_add(1)];
    packet.extend_from_slice(&payload);
    c.send(&packet).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ports_are_the_usual_ones() {
        for &p in StartTls::ALL {
            assert_eq!(StartTls::from_name(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_value(p).unwrap().as_str(),
                Some(p.as_str()),
                "serde and as_str agree"
            );
        }
        assert_eq!(StartTls::Smtp.default_port(), 25);
        assert_eq!(StartTls::XmppServer.default_port(), 5269);
        assert_eq!(StartTls::from_name("SMTP"), None);
    }

    #[test]
    fn ldap_result_codes_parse() {
        // messageID 1, ExtendedResponse { resultCode success, matchedDN "", diag "" }
        assert_eq!(
            ldap_result_code(&[2, 1, 1, 0x78, 7, 0x0a, 1, 0, 4, 0, 4, 0]),
            Some(0)
        );
        assert_eq!(
            ldap_result_code(&[2, 1, 1, 0x78, 7, 0x0a, 1, 2, 4, 0, 4, 0]),
            Some(2)
        );
        assert_eq!(ldap_result_code(&[2, 1, 1, 0x61, 7]), None);
        assert_eq!(ldap_result_code(&[]), None);
    }

    #[test]
    fn xmpp_attributes_are_read_from_the_stream_header_only() {
        let t = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' from=\"fabrikam.com\" id='x'><stream:features from='evil'>";
        assert_eq!(attr(t, "from").as_deref(), Some("fabrikam.com"));
        assert_eq!(attr("<stream:stream id='1'>", "from"), None);
    }
}
