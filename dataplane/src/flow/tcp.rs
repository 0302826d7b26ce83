//! The TCP state machine of a middlebox: it sees both directions and
//! follows SYN, SYN-ACK, ACK, FIN and RST, and keeps per side the highest
//! sequence number seen, so that a packet far from it changes no state.
//!
//! Why a sequence check at all: a RST or FIN believed whatever its
//! sequence number lets anyone who knows a connection's tuple move it to
//! CLOSED and, 10 s later, have its next packets handled as mid-stream
//! (dropped under a drop stream exception policy). Why so loose a check
//! ([`SEQ_WINDOW`] either way, not the receiver's window as Linux conntrack
//! keeps it): the entry has room for one number per side, not conntrack's
//! four, and the packets are forwarded whatever the check says; it only
//! decides whether they move the state. So a blind RST is believed about
//! once in 2048 tries, and a sweep of 2048 RSTs 2 MiB apart always is; a
//! side's first packet is believed, and its number is on trial until its
//! second (see [`follow`]).
//!
//! Not followed: a new connection on a tuple whose previous connection's
//! end was never seen (still ESTABLISHED or closing here, a NAT reusing
//! the port). Its SYN, SYN-ACK, FIN and RST are far from the old numbers,
//! so the entry keeps the old state until it times out; its packets pass
//! as the flow's verdict says. Conntrack restarts such a flow when a
//! SYN-ACK acknowledges the ignored SYN, which needs acknowledgement
//! numbers this entry does not keep.

use super::entry::{flags, FlowEntry, TcpState};
use super::Side;

/// TCP header flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

use tcp_flags::*;

/// Whether a packet with these flags may open a flow: a SYN without ACK,
/// RST or FIN (SYN+FIN is no real stack's opener, only a scanner's).
#[inline(always)]
pub fn opens_flow(f: u8) -> bool {
    f & (SYN | ACK | RST | FIN) == SYN
}

/// The state after a packet with flags `f`, sent by the opener
/// (`from_opener`) or the responder, in state `s`.
#[inline]
pub fn advance(s: TcpState, f: u8, from_opener: bool) -> TcpState {
    use TcpState::*;
    if f & RST != 0 {
        return Closed;
    }
    let syn = f & SYN != 0;
    let ack = f & ACK != 0;
    let fin = f & FIN != 0;
    match s {
        None => None,
        SynSent => {
            if !from_opener && syn {
                // SYN-ACK, or a bare SYN in a simultaneous open.
                SynRecv
            } else {
                // A FIN before the handshake is no close (Linux conntrack
                // calls it invalid): as FinWait, it would have kept a
                // half-open entry for the closing timeout, not the SYN's.
                SynSent
            }
        }
        SynRecv => {
            if fin {
                if from_opener {
                    FinWait
                } else {
                    CloseWait
                }
            } else if from_opener && ack && !syn {
                Established
            } else {
                SynRecv
            }
        }
        Established => {
            if fin {
                if from_opener {
                    FinWait
                } else {
                    CloseWait
                }
            } else {
                Established
            }
        }
        FinWait => {
            if fin && !from_opener {
                TimeWait
            } else {
                FinWait
            }
        }
        CloseWait => {
            if fin && from_opener {
                TimeWait
            } else {
                CloseWait
            }
        }
        TimeWait => TimeWait,
        Closed => Closed,
    }
}

/// How far (either way, modulo 2^32) a packet's sequence number may be
/// from the highest its side has sent and still move the state. Its
/// sender's own packets move forward a segment at a time (64 KiB at most,
/// coalesced); after more than 1 MiB in a row is lost before the
/// appliance, the retransmissions, which start at the first byte lost,
/// are within it again. A RST from a host that lost the connection
/// carries the peer's acknowledgement, so it is met unless more than
/// 1 MiB was in flight.
pub const SEQ_WINDOW: u32 = 1 << 20;

/// Whether `seq` is within [`SEQ_WINDOW`] of `highest`, either way.
#[inline(always)]
pub fn in_window(highest: u32, seq: u32) -> bool {
    seq.wrapping_sub(highest).wrapping_add(SEQ_WINDOW) <= 2 * SEQ_WINDOW
}

/// Follows a packet with flags `f` and sequence number `seq`, travelling
/// `side`, in a TCP flow's entry; returns whether it was believed (moved
/// the state).
///
/// A side's first packet is believed, and its number kept on trial: one
/// packet may be forged, and a real one far from it (a retried connect's
/// new initial number, the real SYN-ACK after a forged one) then replaces
/// it, still on trial, without moving the state. The side's next packet
/// within [`in_window`] confirms the number; from then on a packet outside
/// it changes nothing. A believed packet ahead of the number moves it.
#[inline(always)]
pub fn follow(e: &mut FlowEntry, side: Side, f: u8, seq: u32) -> bool {
    let s = side.index();
    let trial = flags::seq_on_trial(side);
    if e.flags & flags::seq_known(side) == 0 {
        first_seen(e, side, seq);
    } else if !in_window(e.seq[s], seq) {
        if e.flags & trial != 0 {
            e.seq[s] = seq;
        }
        return false;
    } else {
        e.flags &= !trial;
        if (seq.wrapping_sub(e.seq[s]) as i32) > 0 {
            e.seq[s] = seq;
        }
    }
    e.tcp_state = advance(e.tcp_state, f, side == e.opener());
    true
}

/// Keeps `seq`, from `side`'s first packet, as that side's number, on
/// trial (see [`follow`]).
#[inline(always)]
pub fn first_seen(e: &mut FlowEntry, side: Side, seq: u32) {
    e.seq[side.index()] = seq;
    e.flags |= flags::seq_known(side) | flags::seq_on_trial(side);
}

/// Whether a SYN from the opener in state `s` starts a new connection on
/// the same tuple (the old one is over).
#[inline(always)]
pub fn reopens(s: TcpState, f: u8) -> bool {
    opens_flow(f) && matches!(s, TcpState::TimeWait | TcpState::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowKey;
    use TcpState::*;

    #[test]
    fn only_a_plain_syn_opens_or_reopens() {
        assert!(opens_flow(SYN));
        assert!(opens_flow(SYN | PSH));
        for f in [SYN | ACK, SYN | RST, SYN | FIN, ACK, FIN, RST, 0] {
            assert!(!opens_flow(f), "{f:#x}");
            assert!(!reopens(Closed, f), "{f:#x}");
        }
        assert!(reopens(TimeWait, SYN));
    }

    fn run(steps: &[(u8, bool)]) -> Vec<TcpState> {
        let mut s = SynSent;
        let mut out = vec![s];
        for &(f, o) in &steps[1..] {
            s = advance(s, f, o);
            out.push(s);
        }
        out
    }

    #[test]
    fn handshake_data_and_fin_both_ways() {
        let states = run(&[
            (SYN, true),
            (SYN | ACK, false),
            (ACK, true),
            (PSH | ACK, true),
            (ACK, false),
            (FIN | ACK, true),
            (ACK, false),
            (FIN | ACK, false),
            (ACK, true),
        ]);
        assert_eq!(
            states,
            vec![
                SynSent,
                SynRecv,
                Established,
                Established,
                Established,
                FinWait,
                FinWait,
                TimeWait,
                TimeWait
            ]
        );
    }

    #[test]
    fn responder_closes_first() {
        let mut s = Established;
        s = advance(s, FIN | ACK, false);
        assert_eq!(s, CloseWait);
        s = advance(s, ACK, true);
        assert_eq!(s, CloseWait);
        s = advance(s, FIN | ACK, true);
        assert_eq!(s, TimeWait);
    }

    #[test]
    fn simultaneous_close() {
        let mut s = Established;
        s = advance(s, FIN | ACK, true);
        s = advance(s, FIN | ACK, false);
        assert_eq!(s, TimeWait);
        s = advance(s, ACK, true);
        s = advance(s, ACK, false);
        assert_eq!(s, TimeWait);
    }

    #[test]
    fn rst_closes_from_any_state() {
        for s in TcpState::ALL.into_iter().filter(|s| *s != None) {
            assert_eq!(advance(s, RST, true), Closed);
            assert_eq!(advance(s, RST | ACK, false), Closed);
        }
    }

    #[test]
    fn a_fin_before_the_handshake_closes_nothing() {
        for f in [FIN, FIN | ACK, FIN | PSH] {
            assert_eq!(advance(SynSent, f, true), SynSent, "{f:#x}");
            assert_eq!(advance(SynSent, f, false), SynSent, "{f:#x}");
        }
        assert_eq!(advance(SynSent, SYN | ACK | FIN, false), SynRecv);
    }

    #[test]
    fn simultaneous_open_and_retransmits() {
        assert_eq!(advance(SynSent, SYN, false), SynRecv);
        assert_eq!(advance(SynSent, SYN, true), SynSent);
        assert_eq!(advance(SynRecv, SYN | ACK, false), SynRecv);
        assert_eq!(advance(SynRecv, ACK, false), SynRecv);
    }

    #[test]
    fn the_window_is_either_way_and_wraps() {
        let w = SEQ_WINDOW;
        for hi in [0, 1000, u32::MAX - 5, 1 << 31] {
            for d in [0, 1, w - 1, w] {
                assert!(in_window(hi, hi.wrapping_add(d)), "{hi} +{d}");
                assert!(in_window(hi, hi.wrapping_sub(d)), "{hi} -{d}");
            }
            for d in [w + 1, 1 << 31, u32::MAX - w] {
                assert!(!in_window(hi, hi.wrapping_add(d)), "{hi} +{d}");
            }
        }
    }

    fn entry(state: TcpState) -> FlowEntry {
        let mut e = FlowEntry::new(FlowKey::default(), Side::LoToHi, 0);
        e.tcp_state = state;
        e
    }

    #[test]
    fn follow_learns_each_side_then_believes_only_what_is_near() {
        let (lo, hi) = (Side::LoToHi, Side::HiToLo);
        let trials = flags::seq_on_trial(lo) | flags::seq_on_trial(hi);
        let mut e = entry(SynSent);
        assert!(follow(&mut e, lo, SYN, 10));
        // A far packet replaces a number on trial, and moves nothing.
        assert!(!follow(&mut e, lo, SYN, 1 << 31));
        assert_eq!(e.seq[0], 1 << 31);
        assert!(follow(&mut e, hi, SYN | ACK, 77));
        assert_eq!(e.tcp_state, SynRecv);
        assert!(follow(&mut e, lo, ACK, (1 << 31) + 1));
        assert_eq!((e.tcp_state, e.seq), (Established, [(1 << 31) + 1, 77]));
        assert_eq!(e.flags & trials, flags::seq_on_trial(hi));

        // Behind or ahead within the window: believed (and confirming);
        // only ahead moves the number.
        assert!(follow(&mut e, hi, ACK, 77u32.wrapping_sub(500)));
        assert_eq!((e.seq[1], e.flags & trials), (77, 0));
        assert!(follow(&mut e, hi, ACK, 77 + 1460));
        assert_eq!(e.seq[1], 77 + 1460);
        // Far from a confirmed number: nothing moves, not even on a SYN.
        for f in [RST, FIN | ACK, ACK, SYN] {
            assert!(!follow(&mut e, hi, f, 77 + 1460 + SEQ_WINDOW + 1), "{f:#x}");
        }
        assert_eq!((e.tcp_state, e.seq[1]), (Established, 77 + 1460));
        assert!(follow(&mut e, lo, RST, (1 << 31) + 1));
        assert_eq!(e.tcp_state, Closed);
        assert_eq!(
            e.flags & (flags::seq_known(lo) | flags::seq_known(hi) | trials),
            0b1100
        );
    }

    #[test]
    fn syn_after_close_reopens() {
        assert!(reopens(TimeWait, SYN));
        assert!(reopens(Closed, SYN));
        assert!(!reopens(Established, SYN));
        assert!(!reopens(Closed, SYN | ACK));
        assert!(opens_flow(SYN) && !opens_flow(SYN | ACK) && !opens_flow(ACK));
    }
}
