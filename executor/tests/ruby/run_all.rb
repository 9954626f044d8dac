# frozen_string_literal: true

# Runs every test_*.rb in this directory: `ruby executor/tests/ruby/run_all.rb`.
Dir[File.join(__dir__, 'test_*.rb')].sort.each { |f| require f }
