//! The TCP state machine of a middlebox: it sees both directions and
//! follows SYN, SYN-ACK, ACK, FIN and RST without tracking sequence
//! windows. So a RST or FIN is believed whatever its sequence number: one
//! forged with the tuple alone moves an established flow to CLOSED (or a
//! closing state) and its shorter timeout, where Linux conntrack, which
//! tracks windows, would ignore it.

use super::entry::TcpState;

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

/// Whether a SYN from the opener in state `s` starts a new connection on
/// the same tuple (the old one is over).
#[inline(always)]
pub fn reopens(s: TcpState, f: u8) -> bool {
    opens_flow(f) && matches!(s, TcpState::TimeWait | TcpState::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn syn_after_close_reopens() {
        assert!(reopens(TimeWait, SYN));
        assert!(reopens(Closed, SYN));
        assert!(!reopens(Established, SYN));
        assert!(!reopens(Closed, SYN | ACK));
        assert!(opens_flow(SYN) && !opens_flow(SYN | ACK) && !opens_flow(ACK));
    }
}
