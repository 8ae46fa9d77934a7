//! The `receiver` export: the one interface between components that receive
//! profiles and components that send them on.

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, join_all};
use std::fmt;
use std::sync::Arc;

use super::tap::Tap;
use super::{AppendError, DebuginfoTarget, Profile};

/// Something that accepts profiles: a writer, a relabel stage, an archive.
/// It answers only when the profile is delivered (or durably stored), or
/// has definitely failed.
pub trait Appender: Send + Sync + 'static {
    fn append(&self, profile: Profile) -> BoxFuture<'_, Result<(), AppendError>>;

    /// Where debug-info uploads sent to this appender go, if anywhere: a
    /// writer's first endpoint, or for a stage the first target across its
    /// `forward_to`. Asked once per debuginfo request, so the answer follows
    /// reloads.
    fn debuginfo(&self) -> Option<Arc<dyn DebuginfoTarget>> {
        None
    }
}

/// A component's `receiver` export. Its identity is the component id and
/// never changes across reloads: the component swaps the appender behind it
/// when its arguments change, so `forward_to` lists stay valid.
#[derive(Clone)]
pub struct Receiver {
    component_id: Arc<str>,
    target: Arc<ArcSwapOption<Box<dyn Appender>>>,
    tap: Arc<Tap>,
}

impl Receiver {
    /// A receiver that fails every append until [`Receiver::install`] is called.
    pub fn new(component_id: &str) -> Self {
        Self {
            component_id: Arc::from(component_id),
            target: Arc::new(ArcSwapOption::empty()),
            tap: Arc::new(Tap::new(component_id)),
        }
    }

    pub fn component_id(&self) -> &str {
        &self.component_id
    }

    /// The component's live tap, kept across reloads like the receiver.
    pub fn tap(&self) -> &Arc<Tap> {
        &self.tap
    }

    /// Routes appends to `appender` from now on; appends already running
    /// finish on the previous one.
    pub fn install(&self, appender: impl Appender) {
        self.target.store(Some(Arc::new(Box::new(appender))));
    }

    /// Makes appends fail as "not running" (the component was removed).
    pub fn uninstall(&self) {
        self.target.store(None);
    }

    pub async fn append(&self, profile: Profile) -> Result<(), AppendError> {
        let Some(target) = self.target.load_full() else {
            return Err(AppendError::unavailable(format!(
                "component {} is not running",
                self.component_id
            )));
        };
        self.tap
            .observe(profile, |profile| target.append(profile))
            .await
    }

    /// The debuginfo target behind this receiver, if the component running
    /// behind it has one (see [`Appender::debuginfo`]).
    pub fn debuginfo(&self) -> Option<Arc<dyn DebuginfoTarget>> {
        self.target.load().as_ref()?.debuginfo()
    }
}

/// The first debuginfo target across `receivers`, in order (Alloy's rule
/// for receive_http and relabel alike).
pub fn first_debuginfo_target(receivers: &[Receiver]) -> Option<Arc<dyn DebuginfoTarget>> {
    receivers.iter().find_map(Receiver::debuginfo)
}

impl PartialEq for Receiver {
    fn eq(&self, other: &Self) -> bool {
        self.component_id == other.component_id
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receiver({})", self.component_id)
    }
}

/// Sends `profile` to every receiver in parallel and waits for all of them.
/// The results are in the order of `receivers`. The profile is cloned per
/// receiver, which shares its bodies rather than copying them.
pub async fn fan_out(receivers: &[Receiver], profile: Profile) -> Vec<Result<(), AppendError>> {
    match receivers {
        [] => Vec::new(),
        [only] => vec![only.append(profile).await],
        many => join_all(many.iter().map(|r| r.append(profile.clone()))).await,
    }
}
