//! Locations: where a stream lives. A [`Process`] has one instance; a [`Cluster`]
//! has as many as the deployment gives it.
//!
//! Both carry a `Tag` type. Locations created from a marker type
//! (`flow.process_of::<Leader>()`) have distinct types, so rustc rejects mixing their
//! streams without a network edge.

use crate::builder::FlowBuilder;
use crate::ir::LocationId;
use std::marker::PhantomData;

/// A marker type naming a role: `pub struct Leader; impl weir::Role for Leader {}`.
///
/// The role name is the type's name in snake case (`KvServer` → `kv_server`).
pub trait Role {
    fn role_name() -> String {
        let full = std::any::type_name::<Self>();
        let last = full.rsplit("::").next().unwrap_or(full);
        let mut name = String::new();
        for (i, c) in last.chars().enumerate() {
            if c.is_uppercase() {
                if i > 0 {
                    name.push('_');
                }
                name.extend(c.to_lowercase());
            } else {
                name.push(c);
            }
        }
        name
    }
}

/// Something a stream can live at.
pub trait Location<'a>: Clone {
    fn id(&self) -> LocationId;
    fn flow(&self) -> &'a FlowBuilder;
}

macro_rules! location_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a, Tag = ()> {
            pub(crate) id: LocationId,
            pub(crate) flow: &'a FlowBuilder,
            _tag: PhantomData<fn() -> Tag>,
        }

        impl<'a, Tag> $name<'a, Tag> {
            pub(crate) fn new(id: LocationId, flow: &'a FlowBuilder) -> Self {
                $name { id, flow, _tag: PhantomData }
            }
        }

        // Manual impl: `Tag` need not be `Clone`.
        impl<Tag> Clone for $name<'_, Tag> {
            fn clone(&self) -> Self {
                $name::new(self.id, self.flow)
            }
        }

        impl<'a, Tag> Location<'a> for $name<'a, Tag> {
            fn id(&self) -> LocationId {
                self.id
            }
            fn flow(&self) -> &'a FlowBuilder {
                self.flow
            }
        }
    };
}

location_type!(
    /// A location with exactly one instance.
    Process
);
location_type!(
    /// A location with any number of instances (members), set at deploy time.
    Cluster
);
