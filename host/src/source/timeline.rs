//! What a failover did to the WAL weir already sent.
//!
//! A promoted standby starts a new timeline at the position where its copy of the
//! primary's WAL ended. Whatever the old primary wrote after that point, and weir
//! sent to Kafka, never happened on the new primary: its rows are in Kafka, not in
//! the database, and the new primary writes other transactions at the same
//! positions. `synchronized_standby_slots` on the old primary prevents it (no
//! change was decoded before the standby had it); without it, weir can only tell,
//! by the new timeline's history, and stop, naming the positions.

use crate::lsn::Lsn;

/// Where each earlier timeline ended, from a timeline history file
/// (`<timeline>\t<switch position>\t<reason>` lines).
pub(super) fn switch_points(history: &str) -> Vec<(u32, Lsn)> {
    history
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let timeline = fields.next()?.parse().ok()?;
            let switch = fields.next()?.parse().ok()?;
            Some((timeline, switch))
        })
        .collect()
}

/// Changes weir sent that the server it reconnected to does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "after a failover the server is on timeline {timeline}, whose WAL leaves timeline {previous} at {switch}; weir had already sent transactions from the old primary up to {sent}: those committed after {switch} are in Kafka but not in this database (the standby had not received them when it was promoted). weir stops rather than continue from a history Kafka does not match. Reconcile the topics' messages whose weir.lsn header is past {switch} from the old primary, then restart; set synchronized_standby_slots on the primary so a standby that can be promoted always has what weir sends"
)]
pub struct Diverged {
    /// The timeline weir streamed from.
    pub previous: u32,
    /// The server's timeline now.
    pub timeline: u32,
    /// Where `previous` ends in the new timeline's history.
    pub switch: Lsn,
    /// The end of the last transaction weir sent from `previous`.
    pub sent: Lsn,
}

/// Whether weir, having sent transactions up to `sent` on timeline `previous`,
/// may continue on a server whose timeline is `timeline` with `history`: `Err`
/// when the new timeline left `previous` before `sent`. A history that does not
/// name `previous` (a server restored from a backup) says nothing, and passes.
pub(super) fn check(
    previous: u32,
    timeline: u32,
    history: &str,
    sent: Lsn,
) -> Result<Option<Lsn>, Diverged> {
    let Some(switch) = switch_points(history)
        .into_iter()
        .find(|(line, _)| *line == previous)
        .map(|(_, switch)| switch)
    else {
        return Ok(None);
    };
    if sent > switch {
        Err(Diverged {
            previous,
            timeline,
            switch,
            sent,
        })
    } else {
        Ok(Some(switch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = "1\t0/3000000\tno recovery target specified\n\n2\t0/5000A28\tno recovery target specified\n";

    #[test]
    fn switch_points_are_read_per_timeline() {
        assert_eq!(
            switch_points(HISTORY),
            [
                (1, "0/3000000".parse().expect("lsn")),
                (2, "0/5000A28".parse().expect("lsn"))
            ]
        );
        assert!(switch_points("# comment\nnonsense\n").is_empty());
    }

    #[test]
    fn sending_past_the_switch_is_divergence() {
        let lsn = |text: &str| -> Lsn { text.parse().expect("lsn") };
        assert_eq!(
            check(2, 3, HISTORY, lsn("0/5000A28")),
            Ok(Some(lsn("0/5000A28")))
        );
        let diverged = check(2, 3, HISTORY, lsn("0/5000B00")).expect_err("diverged");
        assert_eq!(diverged.switch, lsn("0/5000A28"));
        let message = diverged.to_string();
        assert!(
            message.contains("0/5000A28") && message.contains("0/5000B00"),
            "{message}"
        );
        assert_eq!(check(7, 8, HISTORY, lsn("1/0")), Ok(None));
    }
}
