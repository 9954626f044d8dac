# The smallest useful template: one S3 bucket.
#
#   pangea-executor compile examples/templates/simple_bucket.rb

template :simple_bucket do
  provider :aws do
    region "us-east-1"
  end

  resource :aws_s3_bucket, :site do
    bucket ENV.fetch("PANGEA_BUCKET_NAME", "pangea-example-site")
    tags Name: "site", ManagedBy: "pangea"
  end

  output :bucket_arn do
    value ref(:aws_s3_bucket, :site, :arn)
  end
end
