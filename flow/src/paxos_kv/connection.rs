//! One client connection at its proposer: its requests in the order they
//! came, each until its reply goes out.
//!
//! Replies leave in request order, and a command's answer comes back from a
//! replica later than an error is answered here, so each request keeps its
//! place in one queue: commands wait for their answer, the rest hold their
//! reply. Commands are numbered (`seq`) in that order too, so an answer finds
//! its place by its number, without a map.

use super::resp::Reply;
use super::{ClientId, Command, Op};
use std::collections::VecDeque;

pub struct Connection {
    client: ClientId,
    /// Whether it may send commands (it gave the password, or none is set).
    pub authenticated: bool,
    /// The requests from the oldest not yet replied to, in order.
    requests: VecDeque<Request>,
    /// The place in `requests` of each command from `first_seq` on, counted
    /// from the connection's first request, until its reply goes out.
    places: VecDeque<u64>,
    /// The place of `requests[0]`, counted from the first request.
    first_place: u64,
    /// The number of `places[0]`.
    first_seq: u64,
    /// Commands waiting for their answer.
    waiting: usize,
}

enum Request {
    /// A command, and the clock tick it was last sent at.
    Waiting {
        command: Command,
        sent: u64,
    },
    Ready(Reply),
}

impl Connection {
    pub fn new(client: ClientId, authenticated: bool) -> Self {
        Connection {
            client,
            authenticated,
            requests: VecDeque::new(),
            places: VecDeque::new(),
            first_place: 0,
            first_seq: 0,
            waiting: 0,
        }
    }

    /// The next request is answered with `reply`, in its turn.
    pub fn answer_now(&mut self, reply: Reply) {
        self.requests.push_back(Request::Ready(reply));
    }

    /// The next request is a command (`op`), sent at clock tick `now`: kept
    /// until a replica answers it. What to send. The first begins the
    /// connection's session, numbered `sessions_begun` (which counts on).
    pub fn command(&mut self, op: Op, now: u64, sessions_begun: &mut u64) -> &Command {
        if self.next_seq() == 0 {
            self.client.session = *sessions_begun;
            *sessions_begun += 1;
        }
        let command = Command {
            client: self.client,
            seq: self.next_seq(),
            op,
        };
        self.places
            .push_back(self.first_place + self.requests.len() as u64);
        self.requests
            .push_back(Request::Waiting { command, sent: now });
        self.waiting += 1;
        match self.requests.back() {
            Some(Request::Waiting { command, .. }) => command,
            _ => unreachable!("pushed above"),
        }
    }

    /// The connection closed: the command that ends its session at the
    /// replicas, numbered after all of its commands; none if it sent none.
    pub fn end_session(self) -> Option<Command> {
        let seq = self.next_seq();
        (seq > 0).then_some(Command {
            client: self.client,
            seq,
            op: Op::EndSession,
        })
    }

    /// The number the next command gets: also the number of commands so far.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.places.len() as u64
    }

    /// Commands waiting for their answer.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Command `seq` is answered with `reply`: the command, unless it was
    /// answered before (by the other replica) or is not this connection's.
    pub fn answered(&mut self, seq: u64, reply: Reply) -> Option<Command> {
        let place = *self.places.get(seq.checked_sub(self.first_seq)? as usize)?;
        let request = self.requests.get_mut((place - self.first_place) as usize)?;
        if matches!(request, Request::Ready(_)) {
            return None;
        }
        self.waiting -= 1;
        match std::mem::replace(request, Request::Ready(reply)) {
            Request::Waiting { command, .. } => Some(command),
            Request::Ready(_) => unreachable!("matched above"),
        }
    }

    /// The replies next in order, each given once.
    pub fn replies(&mut self) -> impl Iterator<Item = Reply> + '_ {
        std::iter::from_fn(move || {
            if !matches!(self.requests.front(), Some(Request::Ready(_))) {
                return None;
            }
            let Some(Request::Ready(reply)) = self.requests.pop_front() else {
                unreachable!("matched above")
            };
            self.first_place += 1;
            while self.places.front().is_some_and(|&p| p < self.first_place) {
                self.places.pop_front();
                self.first_seq += 1;
            }
            Some(reply)
        })
    }

    /// The commands waiting that were last sent `older_than` clock ticks
    /// before `now` or more (all of them with `None`), marked sent now.
    pub fn due(&mut self, now: u64, older_than: Option<u64>) -> impl Iterator<Item = Command> + '_ {
        self.requests
            .iter_mut()
            .filter_map(move |request| match request {
                Request::Waiting { command, sent }
                    if older_than.is_none_or(|age| now >= *sent + age) =>
                {
                    *sent = now;
                    Some(command.clone())
                }
                _ => None,
            })
    }

    /// The commands waiting for their answer, in order.
    #[cfg(test)]
    pub fn waiting_commands(&self) -> impl Iterator<Item = &Command> {
        self.requests.iter().filter_map(|request| match request {
            Request::Waiting { command, .. } => Some(command),
            Request::Ready(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        let client = ClientId {
            proposer: 0,
            incarnation: 1,
            connection: 7,
            session: 0,
        };
        Connection::new(client, true)
    }

    fn get(key: &str) -> Op {
        Op::Get(key.as_bytes().to_vec())
    }

    #[test]
    fn replies_leave_in_request_order_whatever_order_answers_come_in() {
        let mut c = connection();
        let a = c.command(get("a"), 0, &mut 0).clone();
        c.answer_now(Reply::Pong);
        let b = c.command(get("b"), 0, &mut 0).clone();
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(c.waiting(), 2);
        // b first: nothing goes, a's place is before it.
        assert_eq!(c.answered(1, Reply::Ok), Some(b));
        assert_eq!(c.replies().count(), 0);
        assert_eq!(c.answered(0, Reply::Integer(1)), Some(a));
        let replies: Vec<Reply> = c.replies().collect();
        assert_eq!(replies, vec![Reply::Integer(1), Reply::Pong, Reply::Ok]);
        assert_eq!(c.waiting(), 0);
        // Numbers go on from where they were.
        assert_eq!(c.command(get("c"), 0, &mut 0).seq, 2);
        let end = c.end_session().expect("it sent commands");
        assert_eq!((end.seq, end.op), (3, Op::EndSession));
        assert!(
            connection().end_session().is_none(),
            "no command, no session"
        );
    }

    #[test]
    fn a_session_is_numbered_at_its_first_command_in_the_order_sessions_begin() {
        // Replicas keep the sessions ended as ranges of these numbers: no
        // gaps, so a connection that sends no command takes none.
        let mut begun = 5;
        let quiet = connection();
        let mut first = connection();
        let mut second = connection();
        assert_eq!(first.command(get("a"), 0, &mut begun).client.session, 5);
        assert_eq!(second.command(get("a"), 0, &mut begun).client.session, 6);
        assert_eq!(first.command(get("b"), 0, &mut begun).client.session, 5);
        assert_eq!(begun, 7);
        assert!(quiet.end_session().is_none());
        assert_eq!(first.end_session().unwrap().client.session, 5);
    }

    #[test]
    fn an_answer_counts_once_and_unknown_numbers_are_ignored() {
        let mut c = connection();
        c.command(get("a"), 0, &mut 0);
        c.command(get("b"), 0, &mut 0);
        assert!(c.answered(1, Reply::Ok).is_some());
        assert_eq!(c.answered(1, Reply::Ok), None, "answered before");
        assert_eq!(c.answered(5, Reply::Ok), None, "never sent");
        assert!(c.answered(0, Reply::Ok).is_some());
        assert_eq!(c.replies().count(), 2);
        assert_eq!(c.answered(0, Reply::Ok), None, "replied to already");
        assert_eq!(c.replies().count(), 0);
    }

    #[test]
    fn only_commands_past_their_age_are_due_and_each_is_sent_again_once() {
        let mut c = connection();
        c.command(get("a"), 0, &mut 0);
        c.answer_now(Reply::Pong);
        c.command(get("b"), 15, &mut 0);
        let due: Vec<u64> = c.due(20, Some(20)).map(|command| command.seq).collect();
        assert_eq!(due, vec![0]);
        assert_eq!(c.due(21, Some(20)).count(), 0, "sent again at 20");
        let all: Vec<u64> = c.due(21, None).map(|command| command.seq).collect();
        assert_eq!(all, vec![0, 1]);
        let waiting: Vec<u64> = c.waiting_commands().map(|command| command.seq).collect();
        assert_eq!(waiting, vec![0, 1]);
    }
}
