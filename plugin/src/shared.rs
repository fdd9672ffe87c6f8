//! State shared by the root and request contexts of one VM (single-threaded).

use proxy_audit_core::runtime::Runtime;
use std::cell::RefCell;
use std::rc::Rc;

pub type Shared = Rc<RefCell<Runtime>>;
