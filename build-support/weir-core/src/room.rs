//! Room for a buffer filled anew each tick.

/// How much a buffer filled anew each tick should start with, so that it
/// need not grow: a vector grown from too little copies itself at each
/// doubling, every tick.
///
/// It is the most that recent ticks held, shrinking by 1/256 a tick so
/// that a burst does not keep its size for ever, and an eighth more so that
/// a tick a little busier than the last does not grow it. Sized by the last
/// tick alone, or shrinking faster, the quiet ticks between busy ones left
/// each busy tick to grow again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickRoom {
    /// The most recent ticks held, in 256ths: kept in whole records, a room
    /// under 256 would never shrink, and a buffer once used would be
    /// allocated every tick for ever.
    most_256ths: usize,
}

impl TickRoom {
    /// No room yet: the first tick's buffer starts empty.
    pub const EMPTY: TickRoom = TickRoom { most_256ths: 0 };

    /// The room after a tick whose buffer held `len`.
    #[must_use]
    pub fn after(self, len: usize) -> TickRoom {
        let shrunk = self.most_256ths - self.most_256ths / 256;
        TickRoom {
            most_256ths: shrunk.max(len.saturating_mul(256)),
        }
    }

    /// The capacity the next tick's buffer starts with.
    pub fn capacity(self) -> usize {
        let most = self.most_256ths / 256;
        most + most / 8
    }

    /// An empty vector with [`capacity`](Self::capacity).
    pub fn vec<T>(self) -> Vec<T> {
        Vec::with_capacity(self.capacity())
    }

    /// What `buffer` held this tick, leaving it empty with room for the
    /// next, which this room now counts.
    pub fn take<T>(&mut self, buffer: &mut Vec<T>) -> Vec<T> {
        *self = self.after(buffer.len());
        std::mem::replace(buffer, self.vec())
    }
}

#[cfg(test)]
mod tests {
    use super::TickRoom;

    #[test]
    fn a_busy_tick_after_quiet_ones_needs_no_growing() {
        let mut room = TickRoom::EMPTY;
        assert_eq!(room.capacity(), 0);
        room = room.after(800);
        for _ in 0..10 {
            room = room.after(2);
        }
        // Room for a tick as busy as the busy one, and a little busier.
        assert!(room.capacity() >= 820, "{room:?}");
        let mut buffer: Vec<u64> = room.vec();
        let capacity = buffer.capacity();
        buffer.extend(0..820);
        assert_eq!(buffer.capacity(), capacity, "it grew");
    }

    #[test]
    fn the_room_of_a_burst_shrinks_back() {
        let mut room = TickRoom::EMPTY.after(100_000);
        for _ in 0..2_000 {
            room = room.after(10);
        }
        assert!(room.capacity() < 1_000, "{room:?}");
    }

    #[test]
    fn a_buffer_no_longer_used_is_no_longer_allocated() {
        let mut room = TickRoom::EMPTY.after(3);
        assert!(room.capacity() >= 3);
        for _ in 0..2_000 {
            room = room.after(0);
        }
        assert_eq!(room.capacity(), 0, "{room:?}");
    }

    #[test]
    fn take_hands_over_the_tick_and_leaves_room_for_the_next() {
        let mut room = TickRoom::EMPTY;
        let mut buffer = vec![1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(room.take(&mut buffer), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(buffer.is_empty());
        assert_eq!(buffer.capacity(), 9);
    }
}
