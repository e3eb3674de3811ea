//! caravan-jobspec: HCL2 jobspecs to the Nomad JSON Job.
