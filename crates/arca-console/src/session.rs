//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie,
//! mapped in memory to who signed in and the session's CSRF token. The
//! identity is re-resolved on every request, so policy changes, disabled
//! keys and deleted users take effect at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lives without use.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// The cookie's name.
pub const COOKIE: &str = "arca_session";
/// The sign-in form's double-submit cookie (against login CSRF).
pub const LOGIN_COOKIE: &str = "arca_login";

/// How a session signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// With an access key pair (root or RAM user).
    AccessKey { id: String },
    /// With a RAM user's console password; `stamp` identifies that
    /// password, so changing or removing it ends the session.
    Password { account: String, user: String, stamp: String },
}

/// One signed-in session.
#[derive(Clone)]
pub struct Session {
    pub login: Login,
    pub csrf: String,
    last_used: Instant,
    /// A new access key's secret, shown once on the next page and then gone
    /// (kept here, not in a URL, so it stays out of history and logs).
    new_secret: Option<(String, String)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("login", &self.login).finish_non_exhaustive()
    }
}

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).expect("system RNG");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    /// Starts a session; returns its id.
    pub fn create(&self, login: Login) -> String {
        let id = random_hex(32);
        let session = Session { login, csrf: random_hex(32), last_used: Instant::now(), new_secret: None };
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.last_used.elapsed() < IDLE_TIMEOUT);
        map.insert(id.clone(), session);
        id
    }

    /// The live session with this id (refreshing its idle timer).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().expect("sessions lock");
        let s = map.get_mut(id)?;
        if s.last_used.elapsed() >= IDLE_TIMEOUT {
            map.remove(id);
            return None;
        }
        s.last_used = Instant::now();
        Some(s.clone())
    }

    /// Keeps a new access key's secret for the session's next page.
    pub fn hold_secret(&self, id: &str, key_id: &str, secret: &str) {
        if let Some(s) = self.map.lock().expect("sessions lock").get_mut(id) {
            s.new_secret = Some((key_id.to_owned(), secret.to_owned()));
        }
    }

    /// The held secret of `key_id`, once.
    pub fn take_secret(&self, id: &str, key_id: &str) -> Option<String> {
        let mut map = self.map.lock().expect("sessions lock");
        let s = map.get_mut(id)?;
        match s.new_secret.take() {
            Some((k, secret)) if k == key_id => Some(secret),
            _ => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(id);
    }
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_matches(session: &Session, submitted: Option<&str>) -> bool {
    match submitted {
        Some(t) => aws_lc_rs::constant_time::verify_slices_are_equal(t.as_bytes(), session.csrf.as_bytes()).is_ok(),
        None => false,
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Constant-time comparison of two tokens.
pub fn tokens_match(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}
