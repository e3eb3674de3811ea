//! `/v1/client/allocation/:alloc_id/exec`: an interactive command inside a running task, over a
//! WebSocket bridged to the agent's bidirectional `Exec` stream.
//!
//! Unlike Nomad, which upgrades first, everything that can be checked before the upgrade is —
//! the parameters, the allocation, the task and starting the command — so those errors are
//! plain HTTP statuses. With `ws_handshake=true` the token arrives in the first frame, so the
//! session is opened after the upgrade and its errors are close frames (1008, or 1011 for
//! internal ones), as are errors during the session.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use caravan_proto::v1::client_allocs_client::ClientAllocsClient;
use caravan_proto::v1::{
    ExecRequest, ExecResponse, ExecSetup, ExecTtySize, exec_request, exec_response,
};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::AppState;
use crate::acl::Capability;
use crate::agents::{AgentTarget, agent_error};
use crate::error::ApiError;
use crate::query::{Query, UuidPath};
use crate::routes::client_allocs::alloc_and_target;

/// An idle session still sends a frame this often, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the client has to send the `ws_handshake` frame.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Input messages queued towards the agent.
const INPUT_WINDOW: usize = 16;
/// How long a finished session waits for the client to close its end.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A close reason must fit a control frame (125 bytes, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// What the query asks for, validated.
struct ExecParams {
    command: Vec<String>,
    task: String,
    tty: bool,
    handshake: bool,
}

fn params(q: &Query) -> Result<ExecParams, ApiError> {
    let raw = q
        .params
        .get("command")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                r#"missing command: give command, a JSON array such as ["/bin/sh"]"#,
            )
        })?;
    let command: Vec<String> = serde_json::from_str(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "command must be a JSON array of strings, such as [\"/bin/sh\"]: {e}"
        ))
    })?;
    if command.is_empty() || command[0].is_empty() {
        return Err(ApiError::bad_request(
            "command is not present: the command array is empty",
        ));
    }
    let tty = q.bool_param("tty", false).map_err(ApiError::bad_request)?;
    let handshake = q
        .bool_param("ws_handshake", false)
        .map_err(ApiError::bad_request)?;
    Ok(ExecParams {
        command,
        task: q.params.get("task").cloned().unwrap_or_default(),
        tty,
        handshake,
    })
}

pub(super) async fn exec(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let params = params(&q)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "exec needs a WebSocket connection (a GET with Upgrade: websocket): {rejection}"
        ))
    })?;
    let setup = ExecSetup {
        alloc_id,
        task: params.task,
        command: params.command,
        tty: params.tty,
    };
    if params.handshake {
        let header_token = q.token;
        return Ok(upgrade.on_upgrade(move |mut socket| async move {
            let authz = match handshake(&mut socket, &header_token).await {
                Ok(token) => {
                    crate::authz::for_token(&state, &token, Capability::ObjectNamespace(EXEC)).await
                }
                Err(e) => Err(e),
            };
            let authz = match authz {
                Ok(authz) => authz,
                Err(e) => {
                    close(&mut socket, e.status.as_u16(), &e.message).await;
                    return;
                }
            };
            match crate::authz::scope(authz, open_session(&state, setup)).await {
                Ok(session) => bridge(socket, session).await,
                Err(e) => close(&mut socket, e.status.as_u16(), &e.message).await,
            }
        }));
    }
    let session = open_session(&state, setup).await?;
    // If the upgrade never completes, the session is dropped and the agent kills the command.
    Ok(upgrade.on_upgrade(move |socket| bridge(socket, session)))
}

/// A started command on the agent: the input side of the stream and its output.
struct Session {
    target: AgentTarget,
    input: mpsc::Sender<ExecRequest>,
    output: Streaming<ExecResponse>,
    /// Resolves once the caller's token may no longer exec here: the session ends.
    revoked: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// The capability exec needs in the allocation's namespace (and `alloc-node-exec` too for a
/// task without filesystem isolation).
const EXEC: &[&str] = &["alloc-exec"];

async fn open_session(state: &AppState, setup: ExecSetup) -> Result<Session, ApiError> {
    let (alloc, target) = alloc_and_target(state, &setup.alloc_id).await?;
    let driver = alloc
        .job
        .as_ref()
        .and_then(|job| job.lookup_task_group(&alloc.task_group))
        .and_then(|tg| {
            let tasks = tg.tasks.as_deref().unwrap_or_default();
            match setup.task.as_str() {
                "" if tasks.len() == 1 => tasks.first(),
                name => tasks.iter().find(|t| t.name == name),
            }
        })
        .map(|t| t.driver.as_str())
        .unwrap_or_default();
    if driver == "raw_exec" {
        crate::authz::check_also(&alloc.namespace, "alloc-node-exec")?;
    }
    let revoked = Box::pin(crate::authz::revocation(state, &alloc.namespace));
    let (input, requests) = mpsc::channel(INPUT_WINDOW);
    let first = ExecRequest {
        msg: Some(exec_request::Msg::Setup(setup)),
    };
    input
        .try_send(first)
        .map_err(|_| ApiError::internal("exec: queueing the setup failed"))?;
    let mut output = ClientAllocsClient::new(state.agent(&target.addr)?)
        .exec(ReceiverStream::new(requests))
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    match output.message().await {
        Ok(Some(ExecResponse {
            msg: Some(exec_response::Msg::Started(_)),
        })) => Ok(Session {
            target,
            input,
            output,
            revoked,
        }),
        Ok(_) => Err(ApiError::internal(
            "exec: the agent did not start the command",
        )),
        Err(s) => Err(agent_error(&target, s)),
    }
}

/// The first frame of a `ws_handshake` session.
#[derive(Deserialize)]
struct Handshake {
    version: serde_json::Value,
    #[serde(default)]
    auth_token: String,
}

/// Reads the handshake frame; answers the token it carries (it replaces the header's).
async fn handshake(socket: &mut WebSocket, header_token: &str) -> Result<String, ApiError> {
    let frame = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_payload(socket))
        .await
        .map_err(|_| ApiError::bad_request("no handshake frame within 30s"))?
        .ok_or_else(|| ApiError::bad_request("the connection closed before the handshake"))?;
    let hs: Handshake = serde_json::from_slice(&frame)
        .map_err(|e| ApiError::bad_request(format!("invalid handshake frame: {e}")))?;
    if hs.version != serde_json::json!(1) {
        return Err(ApiError::bad_request(format!(
            "unexpected handshake value: {}",
            hs.version
        )));
    }
    if !header_token.is_empty() && header_token != hs.auth_token {
        return Err(ApiError::bad_request(
            "handshake auth token mismatched auth header token",
        ));
    }
    Ok(hs.auth_token)
}

/// The payload of the next data frame; `None` once the client closed or the connection broke.
async fn next_payload(socket: &mut WebSocket) -> Option<bytes::Bytes> {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Text(text) => return Some(bytes::Bytes::from(text)),
            Message::Binary(data) => return Some(data),
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    None
}

/// Sends a close frame: 1011 for internal errors, 1008 for everything else, as Nomad does.
async fn close(socket: &mut WebSocket, status: u16, reason: &str) {
    let code = if status >= 500 {
        close_code::ERROR
    } else {
        close_code::POLICY
    };
    let _ = socket.send(close_message(code, reason)).await;
}

fn close_message(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

/// One client frame (Nomad's `ExecStreamingInput`); anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFrame {
    stdin: Option<StdinFrame>,
    tty_size: Option<TtySizeFrame>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StdinFrame {
    data: Option<String>,
    close: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TtySizeFrame {
    height: u16,
    width: u16,
}

/// The agent messages a client frame stands for (none for a heartbeat).
fn decode_frame(payload: &[u8]) -> Result<Vec<ExecRequest>, String> {
    let frame: InputFrame =
        serde_json::from_slice(payload).map_err(|e| format!("invalid exec frame: {e}"))?;
    let mut requests = Vec::new();
    let mut push = |msg| requests.push(ExecRequest { msg: Some(msg) });
    if let Some(stdin) = frame.stdin {
        if let Some(data) = stdin.data.filter(|d| !d.is_empty()) {
            let bytes = STANDARD
                .decode(data.as_bytes())
                .map_err(|e| format!("invalid exec frame: stdin.data is not base64: {e}"))?;
            push(exec_request::Msg::Stdin(bytes.into()));
        }
        if stdin.close == Some(true) {
            push(exec_request::Msg::StdinClose(true));
        }
    }
    if let Some(size) = frame.tty_size {
        push(exec_request::Msg::TtySize(ExecTtySize {
            height: u32::from(size.height),
            width: u32::from(size.width),
        }));
    }
    Ok(requests)
}

/// The client frame for an agent message; `None` for messages the client does not see.
fn encode_frame(msg: exec_response::Msg) -> Option<String> {
    use exec_response::Msg;
    Some(match msg {
        Msg::Stdout(data) => format!(r#"{{"stdout":{{"data":"{}"}}}}"#, STANDARD.encode(&data)),
        Msg::Stderr(data) => format!(r#"{{"stderr":{{"data":"{}"}}}}"#, STANDARD.encode(&data)),
        Msg::StdoutClose(_) => r#"{"stdout":{"close":true}}"#.to_owned(),
        Msg::StderrClose(_) => r#"{"stderr":{"close":true}}"#.to_owned(),
        // Nomad's exit_code is omitempty: a zero code is an empty result.
        Msg::Exited(e) if e.exit_code == 0 => r#"{"exited":true,"result":{}}"#.to_owned(),
        Msg::Exited(e) => format!(
            r#"{{"exited":true,"result":{{"exit_code":{}}}}}"#,
            e.exit_code
        ),
        Msg::Started(_) => return None,
    })
}

/// Runs a session: client frames go to the agent from a reader task; this task is the socket's
/// only writer (output, heartbeats, the exit frame and the close), so frames never interleave.
/// Returning drops the agent stream, which makes the agent kill whatever is still running.
async fn bridge(socket: WebSocket, session: Session) {
    let Session {
        target,
        input,
        mut output,
        mut revoked,
    } = session;
    let (mut sink, mut stream) = socket.split();
    // A malformed frame's reason, sent before the reader drops `input` (which ends the
    // command): the writer finds it even when it sees the agent stream end first. Dropped
    // unsent, the client is gone.
    let (malformed_tx, mut malformed) = oneshot::channel::<String>();
    let mut reader = tokio::spawn(async move {
        // `None` once the command is gone or a frame was refused: what the client sends after
        // that is read and dropped, until its close or its end (see the end of `bridge`).
        let mut input = Some(input);
        let mut malformed_tx = Some(malformed_tx);
        while let Some(Ok(message)) = stream.next().await {
            let payload = match message {
                Message::Text(text) => bytes::Bytes::from(text),
                Message::Binary(data) => data,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => return,
            };
            let Some(tx) = input.as_ref() else {
                continue;
            };
            match decode_frame(&payload) {
                Ok(requests) => {
                    for request in requests {
                        if tx.send(request).await.is_err() {
                            input = None;
                            break;
                        }
                    }
                }
                Err(reason) => {
                    if let Some(malformed_tx) = malformed_tx.take() {
                        let _ = malformed_tx.send(reason);
                    }
                    input = None;
                }
            }
        }
    });
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            reason = &mut malformed => {
                if let Ok(reason) = reason {
                    let _ = sink.send(close_message(close_code::POLICY, &reason)).await;
                }
                break;
            }
            message = output.message() => {
                let frame = match message {
                    Ok(Some(ExecResponse { msg: Some(msg) })) => msg,
                    Ok(Some(ExecResponse { msg: None })) => continue,
                    // The stream ends early because the reader refused a frame, or the agent
                    // failed.
                    _ if !malformed.is_terminated() && let Ok(reason) = malformed.try_recv() => {
                        let _ = sink.send(close_message(close_code::POLICY, &reason)).await;
                        break;
                    }
                    Ok(None) => {
                        let reason = "the exec session ended without an exit status";
                        let _ = sink.send(close_message(close_code::ERROR, reason)).await;
                        break;
                    }
                    Err(status) => {
                        let e = agent_error(&target, status);
                        let code = if e.status.as_u16() >= 500 { close_code::ERROR } else { close_code::POLICY };
                        let _ = sink.send(close_message(code, &e.message)).await;
                        break;
                    }
                };
                let exited = matches!(frame, exec_response::Msg::Exited(_));
                if let Some(text) = encode_frame(frame)
                    && sink.send(Message::Text(text.into())).await.is_err()
                {
                    break;
                }
                if exited {
                    // The exit frame is out before the normal close (Nomad #10657).
                    let _ = sink.send(close_message(close_code::NORMAL, "")).await;
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if sink.send(Message::Text(Utf8Bytes::from_static("{}"))).await.is_err() {
                    break;
                }
            }
            () = &mut revoked => {
                let reason = crate::authz::PERMISSION_DENIED;
                let _ = sink.send(close_message(close_code::POLICY, reason)).await;
                break;
            }
        }
    }
    // The agent stream goes now, whatever the client does next.
    drop(output);
    // The client answers the close (or just hangs up, as Nomad's CLI does after the exit
    // frame). Dropping the socket before reading what it sent meanwhile (stdin, heartbeats)
    // would make the kernel reset the connection, and a reset can destroy the last frames
    // before the client reads them: the exit frame among them.
    let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_to_agent_messages() {
        let msgs = |s: &str| decode_frame(s.as_bytes()).map(|r| r.len());
        assert_eq!(msgs("{}"), Ok(0));
        assert_eq!(msgs(r#"{"stdin":{"data":"aGk="}}"#), Ok(1));
        assert_eq!(msgs(r#"{"stdin":{"data":"aGk=","close":true}}"#), Ok(2));
        assert_eq!(msgs(r#"{"tty_size":{"height":40,"width":120}}"#), Ok(1));
        for bad in [
            "not json",
            r#"{"foo":1}"#,
            r#"{"stdin":{"data":"***"}}"#,
            r#"{"stdin":{"bytes":"aGk="}}"#,
            r#"{"tty_size":{"height":-1,"width":1}}"#,
            r#"{"setup":{}}"#,
            "[]",
        ] {
            assert!(decode_frame(bad.as_bytes()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn output_frames_are_nomads() {
        use exec_response::Msg;
        assert_eq!(
            encode_frame(Msg::Stdout(bytes::Bytes::from_static(b"hi"))).as_deref(),
            Some(r#"{"stdout":{"data":"aGk="}}"#)
        );
        assert_eq!(
            encode_frame(Msg::Exited(caravan_proto::v1::ExecExited { exit_code: 0 })).as_deref(),
            Some(r#"{"exited":true,"result":{}}"#)
        );
        assert_eq!(
            encode_frame(Msg::Exited(caravan_proto::v1::ExecExited { exit_code: 3 })).as_deref(),
            Some(r#"{"exited":true,"result":{"exit_code":3}}"#)
        );
        assert_eq!(
            encode_frame(Msg::StderrClose(true)).as_deref(),
            Some(r#"{"stderr":{"close":true}}"#)
        );
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(200);
        match close_message(close_code::POLICY, &long) {
            Message::Close(Some(frame)) => assert!(frame.reason.as_str().len() <= 123),
            _ => panic!("not a close frame"),
        }
    }
}
