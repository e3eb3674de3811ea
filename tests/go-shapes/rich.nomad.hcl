job "parsed" {
  datacenters = ["*"]
  type        = "service"
  priority    = 60
  meta {
    owner = "shapes"
  }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  affinity {
    attribute = "${meta.rack}"
    value     = "r1"
    weight    = 50
  }
  spread {
    attribute = "${node.datacenter}"
    weight    = 100
  }
  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "5m"
    auto_revert      = true
    canary           = 1
  }
  reschedule {
    delay          = "30s"
    delay_function = "exponential"
    max_delay      = "1h"
    unlimited      = true
  }
  group "g" {
    count = 2
    network {
      port "http" {
        to = 8080
      }
      port "admin" {
        static = 19999
      }
    }
    service {
      name     = "web"
      port     = "http"
      provider = "nomad"
      tags     = ["a", "b"]
      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }
    ephemeral_disk {
      size    = 200
      sticky  = true
      migrate = true
    }
    scaling {
      min     = 1
      max     = 5
      enabled = true
      policy {
        cooldown = "1m"
      }
    }
    task "init" {
      driver = "raw_exec"
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      config {
        command = "/bin/true"
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["60"]
      }
      env {
        GREETING = "hello"
      }
      artifact {
        source      = "https://example.com/x.tgz"
        destination = "local/x"
        options {
          checksum = "md5:abc"
        }
      }
      template {
        data        = "hello {{ env \"GREETING\" }}"
        destination = "local/t.txt"
        change_mode = "signal"
        change_signal = "SIGHUP"
        wait {
          min = "2s"
          max = "10s"
        }
      }
      logs {
        max_files     = 3
        max_file_size = 5
      }
      kill_timeout = "10s"
      kill_signal  = "SIGINT"
      resources {
        cpu        = 100
        memory     = 64
        memory_max = 128
      }
    }
  }
}
