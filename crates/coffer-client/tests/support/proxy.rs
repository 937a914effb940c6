//! A lying server for the e2e tests: an HTTP proxy in front of a real `cofferd` that relays
//! every request faithfully except where the test's [`Liar`] answers it itself, sends it to
//! another path, or alters the answer.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;

/// The request being relayed.
pub struct Relayed {
    /// The request method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The path with the query, as sent upstream unless [`Liar::before`] says otherwise.
    pub path_q: String,
}

/// What a test's lying server does; `Lie` is the test's current choice ([`Proxy::set`]).
pub trait Liar: Send + Sync + 'static {
    /// The kinds of lie the test chooses from.
    type Lie: Copy + Send + 'static;

    /// Before relaying: `Err` (boxed: a response is large) answers the request without asking upstream, `Ok(Some(path))`
    /// relays it to another path (with query), `Ok(None)` relays it as it is.
    fn before(&self, _lie: Self::Lie, _req: &Relayed) -> Result<Option<String>, Box<Response>> {
        Ok(None)
    }

    /// The status the client gets for upstream's `status` (by default the same).
    fn status(&self, _lie: Self::Lie, _req: &Relayed, status: StatusCode) -> StatusCode {
        status
    }

    /// Alters upstream's answer `body` (status `status`) before it goes back to the client.
    fn after(&self, lie: Self::Lie, req: &Relayed, status: StatusCode, body: &mut Vec<u8>);
}

struct ProxyState<L: Liar> {
    upstream: String,
    liar: L,
    lie: Mutex<L::Lie>,
    client: reqwest::Client,
}

/// A running proxy; it lives as long as the test process.
pub struct Proxy<L: Liar> {
    /// The proxy's base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    state: Arc<ProxyState<L>>,
}

impl<L: Liar> Proxy<L> {
    /// Starts a proxy to `upstream` on an ephemeral port, telling `lie` until [`Proxy::set`].
    pub fn start(upstream: &str, liar: L, lie: L::Lie) -> Proxy<L> {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            liar,
            lie: Mutex::new(lie),
            client: reqwest::Client::new(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                let app = axum::Router::new().fallback(relay::<L>).with_state(st);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("proxy address");
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Chooses the lie told from the next request on.
    pub fn set(&self, lie: L::Lie) {
        *self.state.lie.lock().expect("lock") = lie;
    }

    /// The test's liar (for state it keeps).
    pub fn liar(&self) -> &L {
        &self.state.liar
    }
}

async fn relay<L: Liar>(State(st): State<Arc<ProxyState<L>>>, req: Request) -> Response {
    let lie = *st.lie.lock().expect("lock");
    let relayed = Relayed {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        path_q: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
    };
    let headers = req.headers().clone();
    // A client that stops mid-body (one killed, or one that gave up on an upload) is not a
    // failure of the proxy: the request goes no further.
    let Ok(body) = axum::body::to_bytes(req.into_body(), usize::MAX).await else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from("request body cut off"))
            .expect("response");
    };
    let upstream_path = match st.liar.before(lie, &relayed) {
        Err(answer) => return *answer,
        Ok(path) => path.unwrap_or_else(|| relayed.path_q.clone()),
    };
    let mut rb = st.client.request(
        relayed.method.clone(),
        format!("{}{upstream_path}", st.upstream),
    );
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let resp = rb.body(body.to_vec()).send().await.expect("upstream");
    let status = resp.status();
    let rh = resp.headers().clone();
    let mut bytes = resp.bytes().await.expect("upstream body").to_vec();
    st.liar.after(lie, &relayed, status, &mut bytes);
    let status = st.liar.status(lie, &relayed, status);
    let mut out = Response::builder().status(status.as_u16());
    for (k, v) in &rh {
        if k != "content-length" && k != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(bytes)).expect("response")
}
