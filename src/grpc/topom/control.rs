//! The RPCs that control this instance: Reload, Shutdown, Resign, SetLogLevel.

use std::time::Duration;

use tonic::Status;

use super::ServiceControl;
use crate::coordinator::Coordinator;
use crate::pb;

/// How long Resign waits for a standby by default, and at most.
const RESIGN_WAIT: Duration = Duration::from_secs(10);
const MAX_RESIGN_WAIT: Duration = Duration::from_secs(60);

pub(super) async fn reload(c: &Coordinator) -> Result<pb::ReloadResponse, Status> {
    let t = c.reload().await?;
    Ok(pb::ReloadResponse {
        revision: t.revision,
    })
}

pub(super) fn shutdown(control: &ServiceControl) -> pb::ShutdownResponse {
    tracing::info!("shutdown requested over gRPC");
    control.shutdown.cancel();
    pb::ShutdownResponse {}
}

pub(super) async fn resign(
    c: &Coordinator,
    r: pb::ResignRequest,
) -> Result<pb::ResignResponse, Status> {
    let wait = match r.wait {
        None => RESIGN_WAIT,
        Some(d) => Duration::try_from(d)
            .ok()
            .filter(|d| !d.is_zero() && *d <= MAX_RESIGN_WAIT)
            .ok_or_else(|| {
                Status::invalid_argument("wait must be a positive duration of at most 60s")
            })?,
    };
    let (leader, took) = c.resign(wait).await?;
    Ok(pb::ResignResponse {
        leader_addr: leader,
        takeover: prost_types::Duration::try_from(took).ok(),
    })
}

pub(super) fn set_log_level(
    control: &ServiceControl,
    r: pb::SetLogLevelRequest,
) -> Result<pb::SetLogLevelResponse, Status> {
    let filter = match pb::LogLevel::try_from(r.level) {
        Ok(pb::LogLevel::Error) => "error",
        Ok(pb::LogLevel::Warn) => "warn",
        Ok(pb::LogLevel::Info) => "info",
        Ok(pb::LogLevel::Debug) => "debug",
        Ok(pb::LogLevel::Trace) => "trace",
        Ok(pb::LogLevel::Off) => "off",
        _ => {
            return Err(Status::invalid_argument(
                "level must be one of ERROR, WARN, INFO, DEBUG, TRACE, OFF",
            ));
        }
    };
    (control.set_log_filter)(filter).map_err(Status::internal)?;
    tracing::info!(level = filter, "log level changed");
    Ok(pb::SetLogLevelResponse {})
}
