# The job of the README's "Try it": it runs on `caravan agent -dev` as it is (and on Nomad
# with raw_exec enabled). One task prints a line every five seconds and another when it
# receives SIGHUP. tests/tests/example_job.rs parses, registers and runs it.
job "example" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    task "server" {
      # A plain process: no root and no isolation needed.
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args = [
          "-c",
          "trap 'echo got SIGHUP' HUP; i=0; while true; do i=$((i + 1)); echo \"tick $i\"; sleep 5; done",
        ]
      }

      resources {
        cpu    = 50 # MHz
        memory = 32 # MiB
      }
    }
  }
}
