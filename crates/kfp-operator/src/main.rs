//! The `kfp-operator` binary.

fn main() {
    println!("kfp-operator");
}
