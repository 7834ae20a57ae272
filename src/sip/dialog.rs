//! SIP dialogs (RFC 3261 §12): the state a UAS keeps after answering an INVITE — Call-ID,
//! local and remote tags, URIs, CSeq spaces, route set (Record-Route in order) and remote
//! target (Contact) — and the in-dialog requests built from it (BYE, REFER, re-INVITE).

use super::message::{Message, Method, NameAddr};

/// Why an INVITE cannot create a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("request has no {0}")]
    Missing(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From/To value (the INVITE's To, plus our tag).
    pub local_party: String,
    /// Their From/To value (the INVITE's From, with their tag).
    pub remote_party: String,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub route_set: Vec<String>,
    pub remote_target: String,
    pub state: DialogState,
}

impl Dialog {
    /// The UAS side of a dialog created by `invite` (§12.1.1).
    pub fn uas(invite: &Message, local_tag: &str) -> Result<Dialog, DialogError> {
        let call_id = invite
            .call_id()
            .ok_or(DialogError::Missing("Call-ID"))?
            .to_string();
        let from = invite.header("From").ok_or(DialogError::Missing("From"))?;
        let to = invite.header("To").ok_or(DialogError::Missing("To"))?;
        let remote_tag = invite.from_tag().unwrap_or_default();
        let (cseq, _) = invite.cseq().ok_or(DialogError::Missing("CSeq"))?;
        let remote_target = invite
            .header_values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c))
            .map(|n| n.uri)
            .or_else(|| NameAddr::parse(from).map(|n| n.uri))
            .ok_or(DialogError::Missing("Contact"))?;
        Ok(Dialog {
            call_id,
            local_tag: local_tag.to_string(),
            remote_tag,
            local_party: format!("{to};tag={local_tag}"),
            remote_party: from.to_string(),
            local_cseq: 0,
            remote_cseq: cseq,
            route_set: invite
                .header_values("Record-Route")
                .into_iter()
                .map(str::to_string)
                .collect(),
            remote_target,
            state: DialogState::Early,
        })
    }

    /// Whether an in-dialog request's CSeq is acceptable (§12.2.2: lower than the last one
    /// is an out-of-order request, answered 500). Updates the remote CSeq.
    pub fn accept_remote_cseq(&mut self, cseq: u32, method: &Method) -> bool {
        if matches!(method, Method::Ack | Method::Cancel) {
            return true;
        }
        if cseq < self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }

    /// Whether `req` (From tag = their tag, To tag = ours) belongs to this dialog.
    pub fn matches(&self, req: &Message) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.to_tag().as_deref() == Some(self.local_tag.as_str())
            && req.from_tag().unwrap_or_default() == self.remote_tag
    }

    /// A new in-dialog request (§12.2.1.1) with the next local CSeq; the caller adds Via.
    pub fn request(&mut self, method: Method, contact: &str) -> Message {
        self.local_cseq += 1;
        let mut m = Message::request(method.clone(), self.remote_target.clone());
        m.push_header("From", self.local_party.clone());
        m.push_header("To", self.remote_party.clone());
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", format!("{} {method}", self.local_cseq));
        for r in &self.route_set {
            m.push_header("Route", r.clone());
        }
        m.push_header("Max-Forwards", "70");
        m.push_header("Contact", format!("<{contact}>"));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse;

    #[test]
    fn uas_dialog_and_bye() {
        let inv = parse(
            b"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: \"A\" <sip:a@10.0.0.1>;tag=ft\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\n\
Contact: <sip:a@10.0.0.1:5070>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\n\r\n",
        )
        .unwrap();
        let mut d = Dialog::uas(&inv, "lt").unwrap();
        assert_eq!(d.remote_target, "sip:a@10.0.0.1:5070");
        assert_eq!(d.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        let bye = d.request(Method::Bye, "sip:bot@127.0.0.1");
        assert_eq!(bye.request_uri(), Some("sip:a@10.0.0.1:5070"));
        assert_eq!(bye.from_tag().as_deref(), Some("lt"));
        assert_eq!(bye.to_tag().as_deref(), Some("ft"));
        assert_eq!(bye.cseq(), Some((1, Method::Bye)));
        assert_eq!(bye.header_values("Route").len(), 2);
        assert!(!d.accept_remote_cseq(6, &Method::Bye));
        assert!(d.accept_remote_cseq(8, &Method::Bye));
    }
}
