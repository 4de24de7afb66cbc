//! Arca's web console, served by `arca serve` on its own port.
//!
//! Server-rendered pages (maud) with a little plain JavaScript (upload
//! progress, the create-bucket dialog). Every page and action runs as the
//! signed-in identity through the same code the APIs use: object operations
//! through `ObjectService` with the user's `Caller`, KMS and RAM actions
//! through `KmsApiServer::invoke` — so a RAM user sees and does exactly what
//! the policies allow, and refusals carry the APIs' messages.
//!
//! Sessions: a random id in an HttpOnly, SameSite=Strict cookie; every POST
//! carries the session's CSRF token (form field `csrf` or header
//! `X-CSRF-Token`), compared in constant time.

#![warn(missing_docs)]

mod buckets;
mod kms;
mod ram;
mod session;
mod views;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arca_core::{Caller, ObjectService};
use arca_iam::{Context, Iam, Identity, Principal};
use arca_kms_api::KmsApiServer;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use maud::{Markup, html};
use tokio::net::TcpListener;

use crate::session::{COOKIE, LOGIN_COOKIE, Login, Session, Sessions, cookie_value, csrf_matches, tokens_match};
use crate::views::{Frame, page};

/// Response body: small pages in full, downloads streamed.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Largest form body read into memory.
const MAX_FORM: usize = 256 * 1024;

/// What the console serves.
#[derive(Clone)]
pub struct Console {
    svc: ObjectService,
    iam: Arc<Iam>,
    rpc: Arc<KmsApiServer>,
    regions: Arc<Vec<String>>,
    sessions: Arc<Sessions>,
}

/// The signed-in request: who, and the values its conditions see.
pub(crate) struct Ctx {
    pub session_id: String,
    pub session: Session,
    pub caller: Caller,
    pub who: String,
}

impl Ctx {
    pub fn identity(&self) -> &Identity {
        &self.caller.identity
    }

    pub fn account(&self) -> &str {
        self.caller.account_id().unwrap_or_default()
    }

    pub fn frame<'a>(&'a self, section: &'a str) -> Frame<'a> {
        Frame { who: &self.who, csrf: &self.session.csrf, section }
    }
}

/// A parsed form or query.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_owned()
    }

    /// A value exactly as sent (object keys may begin or end with spaces).
    pub fn raw(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response<Body> {
    let body = markup.into_string();
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-frame-options", "DENY")
        .header("content-security-policy", "default-src 'self'; frame-ancestors 'none'")
        .body(full(body))
        .expect("valid response")
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

/// 303 to `location` (after a POST, so reloading does not repeat it).
pub(crate) fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("location", location)
        .body(full(Bytes::new()))
        .expect("valid response")
}

/// `location` with a notice for the next page.
pub(crate) fn redirect_notice(location: &str, notice: &str) -> Response<Body> {
    let sep = if location.contains('?') { '&' } else { '?' };
    redirect(&format!("{location}{sep}notice={}", views::q(notice)))
}

/// A page that says why something was refused or failed.
pub(crate) fn error_page(ctx: &Ctx, section: &str, status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let body = html! {
        p.error role="alert" { (message) }
        p { a href="javascript:history.back()" { "Back" } }
    };
    html_response(status, page(Some(&ctx.frame(section)), title, None, body))
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");

impl Console {
    /// The console over the object service, the identity directory and the
    /// KMS/RAM action layer; `regions` are the regions buckets may live in.
    pub fn new(svc: ObjectService, iam: Arc<Iam>, rpc: Arc<KmsApiServer>, regions: Vec<String>) -> Self {
        Console { svc, iam, rpc, regions: Arc::new(regions), sessions: Arc::default() }
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let this = self.clone();
                    let service = service_fn(move |req| {
                        let this = this.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = std::time::Instant::now();
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let resp = self.route(req, peer).await;
        tracing::info!(
            target: "arca::console",
            method = %method, path = %path, status = resp.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        resp
    }

    fn context(&self, req: &Request<Incoming>, peer: SocketAddr) -> Context {
        let mut context = Context::new()
            .with("acs:SourceIp", peer.ip().to_canonical().to_string())
            .with("acs:SecureTransport", "false")
            .with("acs:CurrentTime", views::iso_now());
        if let Some(ua) = req.headers().get("user-agent").and_then(|v| v.to_str().ok()) {
            context.set("acs:UserAgent", ua);
        }
        context
    }

    /// The signed-in caller of a session, resolved afresh.
    async fn signed_in(&self, session_id: &str, session: Session, context: Context) -> Option<Ctx> {
        let (identity, who) = match &session.login {
            Login::AccessKey { id } => {
                let key = self.svc.access_key(id).await.ok()??;
                if !key.enabled {
                    return None;
                }
                let identity = self.iam.identity(&key).await.ok()?;
                let who = match &identity.principal {
                    Principal::User { name, account, .. } => format!("{name} @ {account}"),
                    _ => format!("root of {}", key.account_id),
                };
                (identity, who)
            }
            Login::Password { account, user, stamp } => {
                let current = self.iam.get_user(account, user).await.ok()?;
                if current.password_stamp() != Some(stamp.as_str()) {
                    return None;
                }
                (self.iam.user_identity(account, user).await.ok()?, format!("{user} @ {account}"))
            }
        };
        let mut context = context;
        if let Some(id) = &identity.access_key_id {
            context.set("acs:AccessId", id.as_str());
        }
        Some(Ctx { session_id: session_id.to_owned(), session, caller: Caller::new(identity, context), who })
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = Form(arca_wire::parse_query(req.uri().query().unwrap_or("")));
        match (req.method(), path.as_str()) {
            (&Method::GET, "/static/app.css") => return static_file("text/css", APP_CSS),
            (&Method::GET, "/static/app.js") => return static_file("text/javascript", APP_JS),
            (&Method::GET, "/favicon.ico") => return plain(StatusCode::NOT_FOUND, "No icon."),
            (&Method::GET, "/login") => {
                // Keep an existing sign-in token: another tab's (or a stray
                // request's) page load must not invalidate the form shown here.
                let cookie = req.headers().get("cookie").and_then(|v| v.to_str().ok());
                let token = cookie_value(cookie, LOGIN_COOKIE).filter(|t| valid_token(t)).map(str::to_owned);
                return login_page(StatusCode::OK, None, query.get("notice"), token);
            }
            (&Method::POST, "/login") => {
                let cookie = req.headers().get("cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let form = match read_form(req).await {
                    Ok(form) => form,
                    Err(r) => return r,
                };
                // Double submit: only a form this site served carries the cookie's token.
                let expected = cookie_value(cookie.as_deref(), LOGIN_COOKIE);
                if !expected.is_some_and(|t| tokens_match(t, form.get("login_token").unwrap_or(""))) {
                    return login_page(
                        StatusCode::FORBIDDEN,
                        Some("The sign-in form expired or came from elsewhere; try again."),
                        None,
                        None,
                    );
                }
                return self.login(form, expected.map(str::to_owned)).await;
            }
            _ => {}
        }
        let context = self.context(&req, peer);
        let cookie = req.headers().get("cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let session_id = cookie_value(cookie.as_deref(), COOKIE).map(str::to_owned);
        let session = session_id.as_deref().and_then(|id| self.sessions.get(id));
        let Some(session) = session else {
            return if req.method() == Method::GET {
                redirect("/login")
            } else {
                plain(StatusCode::UNAUTHORIZED, "Sign in first.")
            };
        };
        let Some(ctx) = self.signed_in(session_id.as_deref().unwrap_or_default(), session, context).await else {
            if let Some(id) = &session_id {
                self.sessions.remove(id);
            }
            return redirect_notice("/login", "Your credentials are no longer valid; sign in again.");
        };
        if req.method() == Method::POST || req.method() == Method::PUT {
            // Uploads send the token in a header; forms in a field (checked after reading the body).
            let header = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
            if req.method() == Method::PUT {
                if !csrf_matches(&ctx.session, header.as_deref()) {
                    return csrf_refused();
                }
                return buckets::upload(self, &ctx, req, &query).await;
            }
            let form = match read_form(req).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            if !csrf_matches(&ctx.session, form.get("csrf").or(header.as_deref())) {
                return csrf_refused();
            }
            if path == "/logout" {
                if let Some(id) = &session_id {
                    self.sessions.remove(id);
                }
                let mut r = redirect_notice("/login", "Signed out.");
                r.headers_mut().insert(
                    "set-cookie",
                    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse().expect("header"),
                );
                return r;
            }
            return self.post(&ctx, &path, &query, form).await;
        }
        if req.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
        }
        self.get(&ctx, &path, &query).await
    }

    async fn get(&self, ctx: &Ctx, path: &str, query: &Form) -> Response<Body> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [""] => redirect("/buckets"),
            ["buckets"] => buckets::list(self, ctx, query, None).await,
            ["buckets", bucket] => buckets::objects(self, ctx, bucket, query).await,
            ["buckets", bucket, "settings"] => buckets::settings(self, ctx, bucket, query, None).await,
            ["buckets", bucket, "object"] => buckets::object(self, ctx, bucket, query).await,
            ["buckets", bucket, "download"] => buckets::download(self, ctx, bucket, query).await,
            ["kms"] => kms::list(self, ctx, query, None).await,
            ["kms", "keys", key] => kms::key(self, ctx, key, query, None).await,
            ["ram"] => ram::overview(self, ctx, query, None).await,
            ["ram", "users", user] => ram::user(self, ctx, user, query, None).await,
            ["ram", "policies", policy] => ram::policy(self, ctx, policy, query, None).await,
            _ => plain(StatusCode::NOT_FOUND, "No such page."),
        }
    }

    async fn post(&self, ctx: &Ctx, path: &str, query: &Form, form: Form) -> Response<Body> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["buckets"] => buckets::create(self, ctx, form).await,
            ["buckets", bucket, "delete"] => buckets::delete(self, ctx, bucket).await,
            ["buckets", bucket, "encryption"] => buckets::save_encryption(self, ctx, bucket, form).await,
            ["buckets", bucket, "delete-object"] => buckets::delete_object(self, ctx, bucket, form).await,
            ["kms", "keys"] => kms::create(self, ctx, query, form).await,
            ["kms", "keys", key, op] => kms::act(self, ctx, key, op, query, form).await,
            ["ram", "users"] => ram::create_user(self, ctx, form).await,
            ["ram", "users", user, op] => ram::user_action(self, ctx, user, op, form).await,
            ["ram", "policies"] => ram::create_policy(self, ctx, form).await,
            ["ram", "policies", policy, op] => ram::policy_action(self, ctx, policy, op, form).await,
            ["ram", "simulate"] => ram::simulate(self, ctx, form).await,
            _ => plain(StatusCode::NOT_FOUND, "No such action."),
        }
    }

    async fn login(&self, form: Form, token: Option<String>) -> Response<Body> {
        let login = match form.get("method") {
            Some("password") => {
                let (account, user, password) = (form.text("account"), form.text("user"), form.get("password"));
                match self.iam.verify_password(&account, &user, password.unwrap_or("")).await {
                    Ok(Some(u)) => {
                        let stamp = u.password_stamp().unwrap_or_default().to_owned();
                        Login::Password { account, user, stamp }
                    }
                    _ => {
                        return login_page(
                            StatusCode::UNAUTHORIZED,
                            Some("Wrong account, user name or password."),
                            None,
                            token,
                        );
                    }
                }
            }
            _ => {
                let (id, secret) = (form.text("access_key_id"), form.get("access_key_secret").unwrap_or(""));
                let ok = match self.svc.access_key(&id).await {
                    Ok(Some(k)) if k.enabled => {
                        aws_lc_rs::constant_time::verify_slices_are_equal(k.secret.as_bytes(), secret.as_bytes())
                            .is_ok()
                    }
                    _ => false,
                };
                if !ok {
                    return login_page(
                        StatusCode::UNAUTHORIZED,
                        Some("Wrong or inactive access key pair."),
                        None,
                        token,
                    );
                }
                Login::AccessKey { id }
            }
        };
        let id = self.sessions.create(login.clone());
        if let Login::Password { account, user, .. } = &login {
            tracing::info!(target: "arca::console", account = %account, user = %user, "console sign-in");
        }
        let mut r = redirect("/buckets");
        r.headers_mut()
            .insert("set-cookie", format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict").parse().expect("header"));
        r
    }
}

/// Decodes a `%XX`-encoded path segment (`+` stays a plus).
pub(crate) fn path_decode(s: &str) -> String {
    arca_wire::parse_query(&format!("v={}", s.replace('+', "%2B"))).pop().map(|(_, v)| v).unwrap_or_default()
}

fn static_file(content_type: &str, text: &'static str) -> Response<Body> {
    Response::builder()
        .header("content-type", content_type)
        .header("cache-control", "max-age=300")
        .body(full(text))
        .expect("valid response")
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(text.to_owned()))
        .expect("valid response")
}

fn csrf_refused() -> Response<Body> {
    plain(StatusCode::FORBIDDEN, "The form's security token is missing or wrong (CSRF); reload the page and try again.")
}

async fn read_form(req: Request<Incoming>) -> Result<Form, Response<Body>> {
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| plain(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?
        .to_bytes();
    Ok(Form(arca_wire::parse_query(&String::from_utf8_lossy(&body))))
}

fn valid_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn login_page(status: StatusCode, error: Option<&str>, notice: Option<&str>, token: Option<String>) -> Response<Body> {
    let token = token.unwrap_or_else(|| session::random_hex(16));
    let body = html! {
        @if let Some(e) = error { p.error role="alert" id="login-error" { (e) } }
        div.columns {
            section aria-labelledby="with-key" {
                h2 id="with-key" { "With an access key" }
                form method="post" action="/login" {
                    input type="hidden" name="method" value="key";
                    input type="hidden" name="login_token" value=(token);
                    label for="access_key_id" { "AccessKey ID" }
                    input id="access_key_id" name="access_key_id" autocomplete="username" required;
                    label for="access_key_secret" { "AccessKey secret" }
                    input id="access_key_secret" name="access_key_secret" type="password" autocomplete="current-password" required;
                    button type="submit" id="login-key" { "Sign in" }
                }
            }
            section aria-labelledby="with-password" {
                h2 id="with-password" { "As a RAM user" }
                form method="post" action="/login" {
                    input type="hidden" name="method" value="password";
                    input type="hidden" name="login_token" value=(token);
                    label for="account" { "Account ID" }
                    input id="account" name="account" inputmode="numeric" required;
                    label for="user" { "User name" }
                    input id="user" name="user" autocomplete="username" required;
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    button type="submit" id="login-password" { "Sign in" }
                }
            }
        }
    };
    let mut r = html_response(status, page(None, "Sign in", notice, body));
    r.headers_mut().insert(
        "set-cookie",
        format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict").parse().expect("header"),
    );
    r
}
