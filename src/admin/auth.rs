//! Who may use the admin face (docs/admin-api.md, "Security").
//!
//! - With `admin.token` set, every path but the console's page shell (`GET /`, which holds
//!   no data and no token) needs `Authorization: Bearer TOKEN`: 401 without it or with a
//!   wrong one.
//! - A browser cannot put that header on a WebSocket, so /events also takes a ticket:
//!   `POST /api/tickets` (with the bearer) answers a single-use ticket that opens one
//!   /events stream within [`TICKET_LIFETIME`]. The token itself never goes in a URL.
//! - Without a token, the face answers reads; its actions (every POST) are refused with 403
//!   when it listens beyond loopback.
//!
//! Pure: requests' parts in, a verdict out.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::Secret;

/// How long a ticket opens an /events stream.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);
/// Tickets waiting to be used, at most (the oldest is forgotten first).
const TICKETS_KEPT: usize = 64;

/// Why a request is refused; each maps to one HTTP status and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401: the face has a token and the request carried none.
    #[error("this admin face needs a bearer token: send Authorization: Bearer TOKEN")]
    MissingToken,
    /// 401: the request carried a wrong token.
    #[error("wrong bearer token")]
    WrongToken,
    /// 401: an /events ticket that is unknown, used or expired.
    #[error("unknown or expired ticket; get one with POST /api/tickets")]
    BadTicket,
    /// 403: an action on a face beyond loopback without a token.
    #[error("actions are refused: the admin face listens beyond loopback without admin.token")]
    ActionsNeedToken,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::MissingToken | Refusal::WrongToken | Refusal::BadTicket => 401,
            Refusal::ActionsNeedToken => 403,
        }
    }
}

/// What the guard looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The request's method is POST (an action).
    pub action: bool,
    /// The path.
    pub path: &'a str,
    /// The Authorization header, if any.
    pub authorization: Option<&'a str>,
    /// The `ticket` query parameter of /events, if any.
    pub ticket: Option<&'a str>,
}

/// The admin face's guard.
pub struct Guard {
    token: Option<Secret>,
    loopback: bool,
    tickets: Mutex<VecDeque<(Secret, Instant)>>,
}

/// 32 random letters and digits (about 190 bits).
fn new_ticket() -> Secret {
    use rand::distributions::{Alphanumeric, DistString};
    Secret::new(Alphanumeric.sample_string(&mut rand::thread_rng(), 32))
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    /// A guard for a face with `token` (empty = none) that listens on loopback or not.
    pub fn new(token: &Secret, loopback: bool) -> Guard {
        Guard {
            token: (!token.is_empty()).then(|| token.clone()),
            loopback,
            tickets: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether the face asks for a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The verdict on one request.
    pub fn check(&self, ask: Ask<'_>) -> Result<(), Refusal> {
        let Some(token) = &self.token else {
            if ask.action && !self.loopback {
                return Err(Refusal::ActionsNeedToken);
            }
            return Ok(());
        };
        if ask.path == "/" && !ask.action {
            return Ok(());
        }
        match ask.authorization {
            Some(header) => {
                let given = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .unwrap_or("")
                    .trim();
                if same(given.as_bytes(), token.expose().as_bytes()) {
                    Ok(())
                } else {
                    Err(Refusal::WrongToken)
                }
            }
            None => match ask.ticket {
                Some(ticket) if ask.path == "/events" && !ask.action => {
                    self.redeem(ticket, Instant::now())
                }
                _ => Err(Refusal::MissingToken),
            },
        }
    }

    /// A new single-use ticket for one /events stream.
    pub fn issue_ticket(&self) -> Secret {
        let ticket = new_ticket();
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        if tickets.len() == TICKETS_KEPT {
            tickets.pop_front();
        }
        tickets.push_back((ticket.clone(), Instant::now() + TICKET_LIFETIME));
        ticket
    }

    /// Uses up a ticket.
    fn redeem(&self, ticket: &str, now: Instant) -> Result<(), Refusal> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.retain(|(_, until)| *until > now);
        let found = tickets
            .iter()
            .position(|(t, _)| same(t.expose().as_bytes(), ticket.as_bytes()));
        match found {
            Some(i) => {
                tickets.remove(i);
                Ok(())
            }
            None => Err(Refusal::BadTicket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(action: bool, path: &'a str, authorization: Option<&'a str>) -> Ask<'a> {
        Ask {
            action,
            path,
            authorization,
            ticket: None,
        }
    }

    /// Row by row: (token, loopback, the request) -> the verdict.
    #[test]
    fn every_request_gets_its_verdict() {
        use Refusal::*;
        let rows: &[(&str, bool, Ask, Result<(), Refusal>)] = &[
            ("", true, ask(false, "/accounts", None), Ok(())),
            ("", true, ask(true, "/api/accounts/a/logout", None), Ok(())),
            ("", false, ask(false, "/accounts", None), Ok(())),
            (
                "",
                false,
                ask(true, "/api/accounts/a/logout", None),
                Err(ActionsNeedToken),
            ),
            ("s3", true, ask(false, "/", None), Ok(())),
            ("s3", true, ask(false, "/accounts", None), Err(MissingToken)),
            ("s3", true, ask(false, "/health", None), Err(MissingToken)),
            (
                "s3",
                true,
                ask(true, "/api/tickets", None),
                Err(MissingToken),
            ),
            (
                "s3",
                true,
                ask(false, "/accounts", Some("Bearer s4")),
                Err(WrongToken),
            ),
            (
                "s3",
                true,
                ask(false, "/accounts", Some("Basic s3")),
                Err(WrongToken),
            ),
            (
                "s3",
                true,
                ask(false, "/accounts", Some("Bearer s3")),
                Ok(()),
            ),
            (
                "s3",
                false,
                ask(true, "/api/accounts/a/drop", Some("Bearer s3")),
                Ok(()),
            ),
            ("s3", true, ask(true, "/", None), Err(MissingToken)),
        ];
        for (token, loopback, ask, verdict) in rows {
            let guard = Guard::new(&Secret::new(*token), *loopback);
            assert_eq!(guard.check(*ask), *verdict, "{token:?} {loopback} {ask:?}");
        }
        assert_eq!(MissingToken.status(), 401);
        assert_eq!(ActionsNeedToken.status(), 403);
    }

    #[test]
    fn a_ticket_opens_one_stream_once_and_only_events() {
        let guard = Guard::new(&Secret::new("s3"), true);
        let ticket = guard.issue_ticket();
        let with = |path, t| Ask {
            action: false,
            path,
            authorization: None,
            ticket: Some(t),
        };
        assert_eq!(
            guard.check(with("/accounts", ticket.expose())),
            Err(Refusal::MissingToken)
        );
        assert_eq!(guard.check(with("/events", ticket.expose())), Ok(()));
        assert_eq!(
            guard.check(with("/events", ticket.expose())),
            Err(Refusal::BadTicket)
        );
        assert_eq!(
            guard.check(with("/events", "guess")),
            Err(Refusal::BadTicket)
        );
        let late = guard.issue_ticket();
        assert_eq!(
            guard.redeem(late.expose(), Instant::now() + TICKET_LIFETIME),
            Err(Refusal::BadTicket)
        );
        for _ in 0..(TICKETS_KEPT + 5) {
            guard.issue_ticket();
        }
        assert_eq!(guard.tickets.lock().unwrap().len(), TICKETS_KEPT);
    }
}
