//! The RADOS layer itself, below the RBD code: the embedded store's class
//! methods against what a real OSD answers.

mod cls_fixtures;
