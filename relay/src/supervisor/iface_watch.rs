//! Following an interface's life from the supervisor's tick: what changed
//! since the last look, as one event. Pure (the tick feeds it observations),
//! so every transition is unit-tested; `xdp_input` and `group_joins` act on
//! the events.

/// What one look at the interface found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No interface of that name (in this network namespace).
    Gone,
    /// Present with this index; `up` = administratively up with carrier.
    Present { ifindex: u32, up: bool },
}

/// A change worth acting on or reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Lost its carrier or was set down: nothing arrives, the program stays attached.
    WentDown,
    /// Up again with the same index: the attachment still holds.
    CameUp,
    /// Deleted: the kernel detached the program; the maps and rings live on in the pins.
    Disappeared,
    /// An interface of that name exists again (a new index): attach to it again.
    Reappeared { ifindex: u32, up: bool },
}

/// One look at `iface` (in this network namespace).
pub fn seen(iface: &str) -> Seen {
    match (crate::xdp::ifindex(iface), crate::xdp::is_up(iface)) {
        (Some(ifindex), Some(up)) => Seen::Present { ifindex, up },
        _ => Seen::Gone,
    }
}

/// The last observation of one interface.
#[derive(Debug)]
pub struct IfaceWatch {
    last: Seen,
}

impl IfaceWatch {
    /// Starts from what the supervisor found (and attached to) at start.
    pub fn new(start: Seen) -> IfaceWatch {
        IfaceWatch { last: start }
    }

    /// Takes a new observation; returns the change since the previous one.
    pub fn observe(&mut self, now: Seen) -> Option<Event> {
        let event = match (self.last, now) {
            (Seen::Gone, Seen::Gone) => None,
            (Seen::Present { .. }, Seen::Gone) => Some(Event::Disappeared),
            (Seen::Gone, Seen::Present { ifindex, up }) => Some(Event::Reappeared { ifindex, up }),
            (Seen::Present { ifindex: a, .. }, Seen::Present { ifindex: b, up }) if a != b => {
                // Deleted and re-created between two looks.
                Some(Event::Reappeared { ifindex: b, up })
            }
            (Seen::Present { up: true, .. }, Seen::Present { up: false, .. }) => Some(Event::WentDown),
            (Seen::Present { up: false, .. }, Seen::Present { up: true, .. }) => Some(Event::CameUp),
            (Seen::Present { .. }, Seen::Present { .. }) => None,
        };
        self.last = now;
        event
    }
}

/// An action retried every tick until it succeeds (re-attach, re-route,
/// re-join): its error is logged once per distinct message, not every second.
#[derive(Debug, Default)]
pub struct RetryLog {
    last: Option<String>,
}

impl RetryLog {
    pub fn failed(&mut self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if self.last.as_deref() != Some(&msg) {
            log::error!("{msg} (retrying every second)");
            self.last = Some(msg);
        }
    }

    pub fn succeeded(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Seen = Seen::Present { ifindex: 4, up: true };
    const DOWN: Seen = Seen::Present { ifindex: 4, up: false };

    fn events(start: Seen, looks: &[Seen]) -> Vec<Option<Event>> {
        let mut w = IfaceWatch::new(start);
        looks.iter().map(|&s| w.observe(s)).collect()
    }

    #[test]
    fn steady_interface_reports_nothing() {
        assert_eq!(events(UP, &[UP, UP]), [None, None]);
        assert_eq!(events(Seen::Gone, &[Seen::Gone]), [None]);
    }

    #[test]
    fn down_and_up_again() {
        assert_eq!(events(UP, &[DOWN, DOWN, UP]), [Some(Event::WentDown), None, Some(Event::CameUp)]);
    }

    #[test]
    fn deleted_then_recreated_with_a_new_index() {
        let new = Seen::Present { ifindex: 9, up: false };
        let new_up = Seen::Present { ifindex: 9, up: true };
        assert_eq!(
            events(UP, &[Seen::Gone, Seen::Gone, new, new_up]),
            [Some(Event::Disappeared), None, Some(Event::Reappeared { ifindex: 9, up: false }), Some(Event::CameUp)]
        );
    }

    #[test]
    fn recreated_between_two_looks_is_a_reappearance() {
        assert_eq!(events(UP, &[Seen::Present { ifindex: 7, up: true }]), [Some(Event::Reappeared { ifindex: 7, up: true })]);
    }

    #[test]
    fn down_at_start_then_up() {
        assert_eq!(events(DOWN, &[UP]), [Some(Event::CameUp)]);
    }
}
