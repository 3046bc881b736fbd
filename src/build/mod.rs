//! Dockerfile front end and build driver.
